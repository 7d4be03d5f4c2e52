"""The console's roles: one enum, the only place a role is named.

The issue calls the contract company's owner ``store_owner``; the stored value stays ``company_owner``
(what the OAuth consent page, the demo's ``--json`` logins and every existing row already say), so the
member is named for the console and valued for compatibility: ``Role.STORE_OWNER == "company_owner"``.
A rename would change a published JSON contract and every deployment's rows for a label.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who a console user is. ``StrEnum``: a member compares equal to its stored string."""

    STORE_OWNER = "company_owner"  # the contract company's owner (契約オーナー); sees only its company
    SECURITY_ADMIN = "security_admin"
    REVIEWER = "reviewer"
    VENDOR = "vendor"  # a vendor's person; sees only that vendor's apps

    @property
    def console_name(self) -> str:
        """The role's name in the issue and the console (``store_owner`` for the owner)."""
        return self.name.lower()


STAFF_ROLES = frozenset({Role.REVIEWER, Role.SECURITY_ADMIN})
