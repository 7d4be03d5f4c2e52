"""The marketplace package's vocabulary: the states and kinds other packages read and write by name.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

from enum import StrEnum


class LifecycleState(StrEnum):
    """Where an app stands: draft → submitted → in_review → listed → restricted → delisted."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    LISTED = "listed"
    RESTRICTED = "restricted"
    DELISTED = "delisted"


class RestrictedPolicy(StrEnum):
    """What a restricted app may still do: receive raw identifying fields as tokens, or nothing."""

    TOKEN = "token"
    PAUSE = "pause"


class VersionStatus(StrEnum):
    """An app version's screening status; ``approved`` and ``rejected`` are final (frozen)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
