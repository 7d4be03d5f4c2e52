"""One console login per role for the demo: the first company's owner (already a login), a security
admin, one of the demo's reviewers and a person of the incident app's vendor. ``appwarden demo`` prints
them and its ``--json`` carries them as ``console_logins`` (demo data only: fresh random passwords)."""

from __future__ import annotations

import secrets

from appwarden.db.session import Database
from appwarden.demo.catalog import APPS_BY_SLUG, INVOICE_PLUS
from appwarden.demo.screening import REVIEWERS
from appwarden.marketplace.vendors import get_vendor
from appwarden.platform import service as platform
from appwarden.platform.accounts import create_vendor_member, set_password
from appwarden.platform.roles import Role

SECURITY_ADMIN = "security-admin"
VENDOR_PERSON = "vendor-dev"


def console_logins(db: Database, owner: dict[str, str], console_url: str) -> list[dict[str, str]]:
    """Create the logins (but the owner's) and return all four, each with its role's console name."""
    admin_password, reviewer_password, vendor_password = (secrets.token_urlsafe(12) for _ in range(3))
    vendor_name = APPS_BY_SLUG[INVOICE_PLUS].vendor
    with db.session() as session:
        platform.create_user(session, SECURITY_ADMIN, admin_password, role=Role.SECURITY_ADMIN)
        set_password(session, REVIEWERS[0], reviewer_password)
        vendor = get_vendor(session, vendor_name)
        create_vendor_member(session, VENDOR_PERSON, vendor_password, vendor=vendor.public_id)
    return [
        {
            "role": Role.STORE_OWNER.console_name,
            "username": owner["username"],
            "password": owner["password"],
            "of": owner["company"],
            "url": console_url,
        },
        {
            "role": Role.SECURITY_ADMIN.console_name,
            "username": SECURITY_ADMIN,
            "password": admin_password,
            "of": "platform",
            "url": console_url,
        },
        {
            "role": Role.REVIEWER.console_name,
            "username": REVIEWERS[0],
            "password": reviewer_password,
            "of": "platform",
            "url": console_url,
        },
        {
            "role": Role.VENDOR.console_name,
            "username": VENDOR_PERSON,
            "password": vendor_password,
            "of": vendor_name,
            "url": console_url,
        },
    ]
