"""The security questionnaire: questions with stable keys, grouped in sections the tier requires.

Pure data and functions; answers are stored by ``screening.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from appwarden.screening.vocabulary import EvidenceKind


class Section(StrEnum):
    DATA = "data"  # what is processed, why, for how long, where: every tier with customer data
    SECURITY = "security"  # how it is protected: identifying fields (tier 2 and up)
    ASSURANCE = "assurance"  # independent checks: raw identifying fields (tier 3)


SECTION_MIN_TIER = {Section.DATA: 1, Section.SECURITY: 2, Section.ASSURANCE: 3}


@dataclass(frozen=True, slots=True)
class Question:
    key: str
    section: Section
    text: str
    dated: bool = False  # the answer carries a date


QUESTIONS: tuple[Question, ...] = (
    Question(
        "minimisation.purpose", Section.DATA, "Which data do you use, for what purpose, and why no less?"
    ),
    Question("transparency.merchants", Section.DATA, "How do you tell merchants what you process?"),
    Question("retention.deletion", Section.DATA, "How long do you keep each field and how is it deleted?"),
    Question(
        "subprocessors.region", Section.DATA, "Which sub-processors do you use; in which hosting region?"
    ),
    Question(
        "incident.notice_24h",
        Section.DATA,
        "Your incident response plan; do you notify the platform within 24 hours?",
    ),
    Question("encryption.transit", Section.SECURITY, "How is data encrypted in transit?"),
    Question("encryption.at_rest", Section.SECURITY, "How is data encrypted at rest?"),
    Question("encryption.backups", Section.SECURITY, "How are backups encrypted?"),
    Question("separation.test_production", Section.SECURITY, "How are test and production data separated?"),
    Question("access.staff", Section.SECURITY, "How is staff access limited and logged?"),
    Question("authentication.strong", Section.SECURITY, "Which strong authentication protects your systems?"),
    Question("dlp", Section.ASSURANCE, "Which data-loss prevention controls are in place?"),
    Question(
        "assessment.last",
        Section.ASSURANCE,
        "Your last penetration test or ASVS-based assessment: by whom, its scope, and its date.",
        dated=True,
    ),
)
BY_KEY = {q.key: q for q in QUESTIONS}

# Evidence each tier needs: every inner set is "one of these kinds".
EVIDENCE_REQUIRED: dict[int, tuple[frozenset[EvidenceKind], ...]] = {
    0: (),
    1: (),
    2: (frozenset({EvidenceKind.SECURITY_POLICY}),),
    3: (
        frozenset({EvidenceKind.SECURITY_POLICY}),
        frozenset({EvidenceKind.PENTEST_REPORT, EvidenceKind.ASVS_ASSESSMENT}),
    ),
}


def required_sections(tier: int) -> list[Section]:
    return [s for s in Section if tier >= SECTION_MIN_TIER[s]]


def required_questions(tier: int) -> list[Question]:
    sections = set(required_sections(tier))
    return [q for q in QUESTIONS if q.section in sections]


def reviewers_required(tier: int) -> int:
    """Tier 3 needs two different reviewers; every other tier one."""
    return 2 if tier >= 3 else 1


def missing_answers(tier: int, answered: set[str]) -> list[str]:
    return [q.key for q in required_questions(tier) if q.key not in answered]


def missing_evidence(tier: int, attached: set[str]) -> list[str]:
    """Each required evidence group with no file attached, as ``kind|kind``."""
    return ["|".join(sorted(group)) for group in EVIDENCE_REQUIRED[min(tier, 3)] if not group & attached]
