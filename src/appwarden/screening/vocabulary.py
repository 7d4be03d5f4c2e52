"""The screening package's vocabulary: the states and kinds other packages read and write by name.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

from enum import StrEnum


class EvidenceKind(StrEnum):
    SECURITY_POLICY = "security_policy"
    PENTEST_REPORT = "pentest_report"
    ASVS_ASSESSMENT = "asvs_assessment"
    CERTIFICATION = "certification"
    OTHER = "other"


class Outcome(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ScopeVerdict(StrEnum):
    """A reviewer's decision on one requested scope: as asked, in a weaker mode, or not at all."""

    APPROVED = "approved"
    WEAKENED = "weakened"
    REFUSED = "refused"


class AuditStatus(StrEnum):
    OPEN = "open"
    PASSED = "passed"
    LAPSED = "lapsed"
