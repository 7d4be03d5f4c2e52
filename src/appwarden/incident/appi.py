"""Pure APPI rules for a personal-data breach (個人情報保護法 第26条, 施行規則 第7条・第8条).

No database, no I/O: deadlines from the awareness time, whether a report to the Personal Information
Protection Commission (PPC) is mandatory and why, and the labels and risks of our customer fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")

# 施行規則 第7条第4号: more than 1,000 persons makes the report mandatory (1,000 exactly does not).
PERSONS_THRESHOLD = 1000
# 速報: "promptly" (速やかに); the PPC guideline reads it as roughly 3-5 days from awareness.
PRELIMINARY_DAYS = (3, 5)
FINAL_DAYS = 30
FINAL_DAYS_UNAUTHORIZED = 60  # 施行規則 第8条第2項: 60 days for 第7条第3号 (不正の目的による漏えい等)

FIELD_LABELS: dict[str, dict[str, str]] = {
    "name": {"ja": "氏名", "en": "name"},
    "name_kana": {"ja": "氏名（カナ）", "en": "name (kana)"},
    "phone": {"ja": "電話番号", "en": "phone number"},
    "email": {"ja": "メールアドレス", "en": "email address"},
    "address": {"ja": "住所", "en": "postal address"},
    "birthday": {"ja": "生年月日", "en": "date of birth"},
    "gender": {"ja": "性別", "en": "gender"},
    "points": {"ja": "ポイント残高", "en": "points balance"},
    "rank": {"ja": "会員ランク", "en": "membership rank"},
}
# 要配慮個人情報 (race, creed, medical history, criminal record, …): none of our customer fields.
SENSITIVE_FIELDS: frozenset[str] = frozenset()
# Data whose misuse may cause financial harm (card numbers, bank accounts, login credentials): none here.
FINANCIAL_FIELDS: frozenset[str] = frozenset()

# What a leaked field exposes people to: the "secondary damage" item of the report.
FIELD_RISKS: dict[str, dict[str, str]] = {
    "name": {"ja": "氏名を悪用したなりすまし・詐欺の連絡", "en": "scams or impersonation using the name"},
    "phone": {
        "ja": "迷惑電話・詐欺電話、SMSによるフィッシング",
        "en": "nuisance or fraudulent calls, SMS phishing",
    },
    "email": {"ja": "迷惑メール・フィッシングメール", "en": "spam and phishing email"},
    "address": {"ja": "ダイレクトメール・訪問による勧誘や詐欺", "en": "unsolicited mail or visits, fraud"},
    "birthday": {"ja": "本人確認情報としての悪用", "en": "misuse as identity-verification data"},
}


@dataclass(frozen=True)
class Deadlines:
    """Report deadlines as calendar dates in Japan (JST)."""

    aware_on: date
    preliminary_from: date
    preliminary_to: date
    final_days: int
    final_due: date

    def to_dict(self, lang: str = "en") -> dict[str, object]:
        """The deadlines as JSON, the preliminary report's rule worded in ``lang``."""
        rule = {"ja": "速やかに（目安3〜5日）", "en": "promptly (速やかに), roughly 3-5 days"}[lang]
        return {
            "aware_on": self.aware_on.isoformat(),
            "preliminary": {
                "from": self.preliminary_from.isoformat(),
                "to": self.preliminary_to.isoformat(),
                "rule": rule,
            },
            "final": {"due": self.final_due.isoformat(), "days": self.final_days},
        }


def deadlines(aware_at: datetime, *, unauthorized_access: bool) -> Deadlines:
    """Deadlines for the preliminary (速報) and final (確報) reports.

    The day of awareness counts as day 1 and weekends and holidays count too (PPC guideline 通則編
    3-5-3-4), so a 30-day final report is due on awareness date + 29 days.
    """
    if aware_at.tzinfo is None:
        raise ValueError("aware_at must be timezone-aware")
    aware_on = aware_at.astimezone(JST).date()
    final_days = FINAL_DAYS_UNAUTHORIZED if unauthorized_access else FINAL_DAYS
    return Deadlines(
        aware_on=aware_on,
        preliminary_from=aware_on + timedelta(days=PRELIMINARY_DAYS[0]),
        preliminary_to=aware_on + timedelta(days=PRELIMINARY_DAYS[1]),
        final_days=final_days,
        final_due=aware_on + timedelta(days=final_days - 1),
    )


@dataclass(frozen=True)
class Reason:
    """One ground (施行規則 第7条 各号) that makes the report mandatory."""

    code: str  # sensitive | financial | unauthorized_access | over_1000
    rule: str
    ja: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "rule": self.rule, "ja": self.ja, "en": self.en}


def mandatory_reasons(*, persons: int, unauthorized_access: bool, fields: Iterable[str]) -> list[Reason]:
    """Why reporting to the PPC and notifying the persons is mandatory; an empty list means it is not.

    ``persons`` is the number of persons of one data controller (the company), since each controller
    reports its own breach; ``fields`` are the exposed fields.
    """
    exposed = set(fields)
    reasons: list[Reason] = []
    sensitive = sorted(exposed & SENSITIVE_FIELDS)
    if sensitive:
        reasons.append(
            Reason(
                "sensitive",
                "施行規則第7条第1号",
                f"要配慮個人情報（{'・'.join(label(f, 'ja') for f in sensitive)}）が含まれる",
                f"sensitive personal data ({', '.join(label(f, 'en') for f in sensitive)}) is involved",
            )
        )
    financial = sorted(exposed & FINANCIAL_FIELDS)
    if financial:
        reasons.append(
            Reason(
                "financial",
                "施行規則第7条第2号",
                "不正に利用されることにより財産的被害が生じるおそれがある個人データが含まれる",
                "data whose misuse may cause financial harm is involved",
            )
        )
    if unauthorized_access:
        reasons.append(
            Reason(
                "unauthorized_access",
                "施行規則第7条第3号",
                "不正の目的をもって行われたおそれがある漏えい等（不正アクセスの疑い）",
                "the leak may have been caused with wrongful intent (suspected unauthorised access)",
            )
        )
    if persons > PERSONS_THRESHOLD:
        reasons.append(
            Reason(
                "over_1000",
                "施行規則第7条第4号",
                f"本人の数が1,000人を超える（{persons:,}人）",
                f"more than 1,000 persons are affected ({persons:,})",
            )
        )
    return reasons


def label(field: str, lang: str) -> str:
    """The field's name in ``lang`` (``ja`` or ``en``)."""
    return FIELD_LABELS.get(field, {}).get(lang, field)


def risks(fields: Iterable[str], lang: str) -> list[str]:
    """Secondary-damage risks the exposed fields carry, in field order."""
    return [FIELD_RISKS[f][lang] for f in fields if f in FIELD_RISKS]


def exposed_fields(fields: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """``{field: exposed count}`` for fields with anyone exposed, in the platform's field order."""
    order = list(FIELD_LABELS)
    present = {f: int(v.get("exposed", 0)) for f, v in fields.items() if int(v.get("exposed", 0)) > 0}
    return dict(sorted(present.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
