"""The oauth package's vocabulary: the states and kinds other packages read and write by name.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

from enum import StrEnum


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
