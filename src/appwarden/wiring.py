"""Composition: the one place where a lower package's announcements get their answers.

A package imports only the packages below it (the layers contract in ``pyproject.toml``), yet six
writes must be answered in the same transaction by a package above the writer:

- a customer write (``platform.customer_changes``) refreshes the blind index (``blind_index``), and a
  deleted customer is owed a ``customer.redact`` by every app that received them (``obligations``);
- an owner's consent (``oauth.service.connection_granted``) issues the connection's canaries (``canary``);
- an opened incident (``incident.service.incident_opened``) takes the canary alerts raised before it;
- a canary contact (``canary.alerts.canary_contacted``) joins the monitor's alert stream (``monitor``);
- a refused token reuse (``oauth.service.token_reused``) raises the monitor's ``probing`` alert;
- canaries found in an attributed dump (``attribution.service.dump_canaries_found``) are checked
  against the vendors' erasure attestations (``monitor.obligation_checks``: ``erasure_contradicted``).

Three answers fill the marketplace's app views (``marketplace.facts.app_facts``, a question, not a
write): the monitor's risk score (``monitor.risk.risk_fact``), the ledger's unused scopes
(``ledger.usage.unused_scopes_fact``) and what the vendor may still hold
(``obligations.service.holdings_fact``); every app list is ordered by the risk. One answer decides
whether the review may list an app (``screening.review.listing_gate``): the vendor's erasure endpoint
passed the review's check (``obligations.endpoint_check.endpoint_check_of``).

The monitor's yardstick, ``monitor.declarations.declared_volume_source``, is a slot to be registered
here once the marketplace's declarations exist (issue 11); until then it answers the settings' defaults.

Each announcement is a :class:`appwarden.hooks.Hook`; this module, above all of them, registers the
answers. Every entry point calls :func:`wire` before it writes: the app factory (``app.create_app``),
the CLI (``cli.run``), the test suite (``tests/conftest.py``) and the bench scripts that write
customers. A new seam of this kind is registered here, nowhere else.

The store membership bitmaps are the platform's own and are refreshed by its write paths directly.
"""

from __future__ import annotations

from appwarden.attribution.service import dump_canaries_found
from appwarden.blind_index.service import refresh_changed_customers
from appwarden.canary import alerts as canary_alerts
from appwarden.canary import service as canary_service
from appwarden.incident.service import incident_opened
from appwarden.ledger.usage import unused_scopes_fact
from appwarden.marketplace.facts import app_facts
from appwarden.monitor.canary import canary_contacted as monitor_canary_contacted
from appwarden.monitor.declarations import declared_volume_source
from appwarden.monitor.declarations import from_marketplace as declarations_from_marketplace
from appwarden.monitor.obligation_checks import dump_canaries_found as monitor_dump_canaries_found
from appwarden.monitor.probing import token_reused as monitor_token_reused
from appwarden.monitor.risk import risk_fact
from appwarden.oauth.service import connection_granted, token_reused
from appwarden.obligations.endpoint_check import endpoint_check_of
from appwarden.obligations.erasure_triggers import customer_deleted
from appwarden.obligations.service import holdings_fact
from appwarden.platform.customer_changes import on_customers_changed
from appwarden.screening.review import listing_gate


def wire() -> None:
    """Register every answer to every announcement. Idempotent: call it from each entry point."""
    on_customers_changed(refresh_changed_customers)
    on_customers_changed(customer_deleted)
    connection_granted.register(canary_service.connection_granted)
    incident_opened.register(canary_alerts.attach_pending_alerts)
    canary_alerts.canary_contacted.register(monitor_canary_contacted)
    token_reused.register(monitor_token_reused)
    dump_canaries_found.register(monitor_dump_canaries_found)
    declared_volume_source.register(declarations_from_marketplace)
    app_facts.register(risk_fact)
    app_facts.register(unused_scopes_fact)
    app_facts.register(holdings_fact)
    listing_gate.register(endpoint_check_of)
