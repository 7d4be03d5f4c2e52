"""Labels the console shows for stored values (fields, modes, roles, states): English message ids,
marked for the catalogue with ``N_`` and translated where they are rendered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appwarden.console.i18n import N_
from appwarden.marketplace.scopes import MASKED_EXAMPLES, PII_FIELDS, FieldScope, parse_scope
from appwarden.platform.roles import Role

FIELDS = {
    "name": N_("Name"),
    "name_kana": N_("Name (kana)"),
    "phone": N_("Phone number"),
    "email": N_("Email address"),
    "address": N_("Address"),
    "birthday": N_("Date of birth"),
    "gender": N_("Gender"),
    "points": N_("Points"),
    "rank": N_("Member rank"),
}
MODES = {
    "raw": N_("Full value"),
    "masked": N_("Masked value"),  # grant rows add the field's own example (MASKED_EXAMPLES)
    "token": N_("Pseudonym token (the real value is not given)"),
}
RESOURCES = {
    "transactions:read": N_("Transactions"),
    "products:read": N_("Products"),
    "stores:read": N_("Stores"),
}
READ_ONLY = N_("Read only")
ROLES = {
    Role.STORE_OWNER: N_("Store owner"),
    Role.SECURITY_ADMIN: N_("Security admin"),
    Role.REVIEWER: N_("Reviewer"),
    Role.VENDOR: N_("Vendor"),
}
CONNECTION_STATUSES = {
    "active": N_("Connected"),
    "suspended": N_("Suspended by the platform"),
    "revoked": N_("Disconnected"),
}
LISTING_STATES = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "in_review": N_("In review"),
    "listed": N_("Listed"),
    "restricted": N_("Restricted"),
    "delisted": N_("Delisted"),
}


def grant_rows(
    scopes: Iterable[str], *, raw_by_restricted_token_only: bool = False
) -> list[dict[str, object]]:
    """One row per granted scope: ``label`` and ``mode`` (message ids), ``pii``, the scope itself, and
    ``restricted`` when a raw identifying field comes only through restricted tokens (ordinary calls
    get it masked: the broker's rule, ``broker.auth.ordinary_modes``)."""
    rows: list[dict[str, object]] = []
    for scope in scopes:
        parsed = parse_scope(scope)
        if isinstance(parsed, FieldScope):
            rows.append(
                {
                    "scope": scope,
                    "label": FIELDS.get(parsed.field, parsed.field),
                    "mode": MODES[parsed.mode.value],
                    "mode_key": parsed.mode.value,
                    "example": MASKED_EXAMPLES.get(parsed.field, ("", ""))[1]
                    if parsed.mode.value == "masked"
                    else "",
                    "pii": parsed.field in PII_FIELDS,
                    "restricted": raw_by_restricted_token_only
                    and parsed.field in PII_FIELDS
                    and parsed.mode.value == "raw",
                }
            )
        else:
            label = RESOURCES.get(str(parsed), str(parsed))
            rows.append(
                {
                    "scope": scope,
                    "label": label,
                    "mode": READ_ONLY,
                    "mode_key": "read",
                    "pii": False,
                    "restricted": False,
                }
            )
    return rows


def who_has_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``ledger.queries.who_has`` rows with the field and mode as label message ids (translated in the
    template, ``_who_has_table.html``)."""
    return [
        dict(row)
        | {
            "field_label": FIELDS.get(row["field"], row["field"]),
            "mode_label": MODES.get(row["mode"], row["mode"]),
        }
        for row in rows
    ]


# The attestation states as the page names them.
ATTESTATION_STATES = {
    "not_delivered": N_("Not delivered yet"),
    "due": N_("Attestation due"),
    "overdue": N_("Attestation overdue"),
    "attested": N_("Attested"),
    "not_required": N_("No attestation needed (disclosure request)"),
}
