"""The HTML side: Jinja2 templates (Japanese with English), CSRF tokens bound to the session, labels."""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from appwarden.config import Settings
from appwarden.marketplace.scopes import MASKED_EXAMPLES, PII_FIELDS, FieldScope, Mode, parse_scope

Session = MutableMapping[str, Any]

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
FIELD_LABELS = {
    "name": ("氏名", "Name"),
    "name_kana": ("フリガナ", "Name (kana)"),
    "phone": ("電話番号", "Phone number"),
    "email": ("メールアドレス", "Email address"),
    "address": ("住所", "Address"),
    "birthday": ("生年月日", "Date of birth"),
    "gender": ("性別", "Gender"),
    "points": ("ポイント", "Points"),
    "rank": ("会員ランク", "Member rank"),
}
MODE_LABELS = {
    "raw": ("そのままの値（全体）", "The full value"),
    "masked": ("一部を伏せた値", "Masked"),  # followed by the field's own example (MASKED_EXAMPLES)
    "token": ("仮名トークン（実際の値は渡しません）", "A pseudonym token (the real value is not given)"),
}
RESOURCE_LABELS = {
    "transactions:read": ("取引履歴", "Transactions", "閲覧のみ", "Read only"),
    "products:read": ("商品情報", "Products", "閲覧のみ", "Read only"),
    "stores:read": ("店舗情報", "Stores", "閲覧のみ", "Read only"),
}
# The consent page must not be framed (clickjacking) nor cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status, headers=PAGE_HEADERS)


def message(status: int, title: tuple[str, str], text: tuple[str, str], **extra: Any) -> HTMLResponse:
    return page(
        "message.html",
        status,
        title_ja=title[0],
        title_en=title[1],
        message_ja=text[0],
        message_en=text[1],
        css="error" if status >= 400 else "notice",
        **extra,
    )


def error_page(error: OAuth2Error) -> HTMLResponse:
    return message(
        error.status_code if error.status_code >= 400 else 400,
        ("認可リクエストのエラー", "Authorisation request error"),
        (
            "このリクエストは処理できません。アプリには戻りません。",
            "This request cannot be processed; you will not be sent back to the app.",
        ),
        error_code=error.error,
        description=error.description,
    )


def csrf_token(session: Session) -> str:
    """The session's CSRF token (synchroniser pattern), created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = generate_token(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Session, presented: str | None) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def safe_next(target: str | None) -> str | None:
    """Only our own authorisation endpoint is a valid place to return to after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != "/oauth/authorize" or target.startswith("//"):
        return None
    return target


def consent_items(scope: str, disclosure: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per requested scope: its labels, and with ``disclosure`` (``marketplace.service.
    consent_disclosure``) the vendor's declared purpose and retention, and whether a raw identifying field
    comes only by restricted token."""
    disclosure = disclosure or {}
    purposes: dict[str, str] = disclosure.get("purposes", {})
    retention: dict[str, dict[str, Any]] = disclosure.get("retention", {})
    items = []
    for item in scope_to_list(scope) or []:
        parsed = parse_scope(item)
        restricted_only = False
        if isinstance(parsed, FieldScope):
            key = parsed.field
            label_ja, label_en = FIELD_LABELS[parsed.field]
            mode_ja, mode_en = MODE_LABELS[parsed.mode.value]
            if parsed.mode is Mode.MASKED and parsed.field in MASKED_EXAMPLES:
                example = MASKED_EXAMPLES[parsed.field][1]
                mode_ja, mode_en = f"{mode_ja}（例: {example}）", f"{mode_en} (e.g. {example})"
            restricted_only = bool(disclosure.get("raw_by_restricted_token_only")) and (
                parsed.mode is Mode.RAW and parsed.field in PII_FIELDS
            )
        else:
            key = str(parsed)
            label_ja, label_en, mode_ja, mode_en = RESOURCE_LABELS[parsed]
        kept = retention.get(key)
        items.append(
            {
                "scope": item,
                "label_ja": label_ja,
                "label_en": label_en,
                "mode_ja": mode_ja,
                "mode_en": mode_en,
                "purpose": purposes.get(key),
                "retention_days": None if kept is None else kept.get("days"),
                "retention_purpose": None if kept is None else kept.get("purpose"),
                "restricted_only": restricted_only,
            }
        )
    return items


def vendor_obligations(items: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """What the consent page says the vendor owes once connected: how long it may keep each field it
    would receive as a value (raw or masked; the days it accepted in review, else the default), the
    erasure requests it must honour (``company.redact`` so many hours after a disconnection,
    ``customer.redact``), the days it has to attest an erasure, and the canaries it receives."""
    kept = []
    for item in items:
        parsed = parse_scope(item["scope"])
        if isinstance(parsed, FieldScope) and parsed.mode in (Mode.RAW, Mode.MASKED):
            days = item["retention_days"]
            kept.append(
                {
                    "label_ja": item["label_ja"],
                    "label_en": item["label_en"],
                    "days": int(days) if days is not None else settings.retention_default_days,
                    "declared": days is not None,
                }
            )
    return {
        "retention": kept,
        "redact_hours": f"{settings.erasure_company_redact_delay_hours:g}",
        "attestation_days": settings.attestation_deadline_days,
        "canaries": settings.canaries_per_connection if settings.canary_enabled else 0,
    }
