"""What the system itself writes about an incident, in each language of the notices and reports.

The incident record keeps facts as text (the console shows it as is); facts the system generated also
carry a ``code`` and their ``params``, so a Japanese report can say them in Japanese instead of quoting
the English console text. What an operator typed (``--reason``, ``--known``) has no code and is quoted as
typed. The project's other per-language texts follow the same pattern (``appi.FIELD_LABELS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from appwarden.incident.appi import JST

# What the seed article's platform still did not know days later (わかっていないこと): every new incident
# starts with these open, and they are resolved one by one (``incident fact --resolve``).
SEED_QUESTIONS: dict[str, dict[str, str]] = {
    "route": {"en": "How the data was taken (the route of the leak)", "ja": "流出の経緯・手口"},
    "when": {"en": "When the data was taken", "ja": "流出の時期"},
    "who": {"en": "Who took it", "ja": "流出させた者"},
    "vendor_security": {
        "en": "The vendor's security measures",
        "ja": "アプリベンダーのセキュリティ対策の状況",
    },
    "published_scope": {"en": "The scope of what was published", "ja": "公開された情報の範囲"},
    "secondary_damage": {"en": "Secondary damage (misuse of the data)", "ja": "二次被害の有無"},
}
SEED_CODE = "seed_question"
KILL_SWITCH_CODE = "kill_switch"


def seed_text(question: str) -> str:
    """A seed question as the console shows it: both languages."""
    words = SEED_QUESTIONS[question]
    return f"{words['en']} / {words['ja']}"


SEED_UNKNOWNS = tuple(seed_text(q) for q in SEED_QUESTIONS)
_SEED_BY_TEXT = {seed_text(q): q for q in SEED_QUESTIONS}


def seed_fact(question: str, *, at: str) -> dict[str, Any]:
    """A seed question as an ``unknown`` entry of the incident record."""
    return {"text": seed_text(question), "at": at, "by": "seed", "code": SEED_CODE, "question": question}


def kill_switch_summary(lang: str, params: Mapping[str, Any], *, at: datetime | None = None) -> str:
    """What the kill switch did (its timeline entry's counts), as a sentence in ``lang``."""
    apps = [str(a) for a in params.get("apps", [])]
    tokens = int(params.get("tokens_revoked", 0))
    refresh = int(params.get("refresh_tokens_revoked", 0))
    connections = int(params.get("connections_suspended", 0))
    companies = int(params.get("companies", 0))
    if lang == "ja":
        local = at.astimezone(JST) if at else None
        when = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（日本時間）、" if local else ""
        return (
            f"{when}キルスイッチにより、アプリ{''.join(f'「{a}」' for a in apps)}を非公開化し、"
            f"アクセストークン{tokens:,}件（うち有効なリフレッシュトークンのあるもの{refresh:,}件）を失効させ、"
            f"{companies:,}社の連携{connections:,}件を停止した。"
        )
    text = (
        f"kill switch: {', '.join(apps)} delisted; {tokens} access tokens ({refresh} with live refresh "
        f"tokens) revoked; {connections} connections of {companies} companies suspended"
    )
    return f"{text} at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if at else text


def fact_text(entry: Mapping[str, Any], lang: str) -> str:
    """A known / not-yet-known entry in ``lang``: generated facts are worded anew, typed ones as typed."""
    text = str(entry.get("text") or "")
    code = entry.get("code")
    if code == KILL_SWITCH_CODE:
        at = entry.get("at")
        return kill_switch_summary(
            lang, entry.get("params") or {}, at=datetime.fromisoformat(at) if isinstance(at, str) else None
        )
    # Seed questions recorded before they carried a code are recognised by their text.
    question = entry.get("question") if code == SEED_CODE else _SEED_BY_TEXT.get(text)
    if isinstance(question, str) and question in SEED_QUESTIONS:
        return SEED_QUESTIONS[question][lang]
    return text


def fact_texts(entries: Sequence[Mapping[str, Any] | str] | None, lang: str) -> list[str]:
    """Every entry of a fact list in ``lang`` (plain strings are typed text), empty ones left out."""
    out: list[str] = []
    for entry in entries or []:
        text = fact_text(entry, lang) if isinstance(entry, Mapping) else str(entry)
        if text:
            out.append(text)
    return out
