"""APPI report drafts from a real incident and blast radius: md/json/pdf in ja/en through the CLI and the
admin API; every item of 施行規則 第8条; Japanese text read back out of the PDF (pypdf, no poppler)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from appwarden.cli import run
from appwarden.incident.models import Incident
from appwarden.incident.reports import ITEM_KEYS
from appwarden.incident.service import get_incident, timeline
from conftest import World, build_world
from pdf_text import embedded_fonts, flat_text, read_pdf
from test_notices import affected_incident

HEADINGS_JA = [
    "概要",
    "漏えい等が発生し、又は発生したおそれがある個人データの項目",
    "漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
    "原因",
    "二次被害又はそのおそれの有無及びその内容",
    "本人への対応の実施状況",
    "公表の実施状況",
    "再発防止のための措置",
    "その他参考となる事項",
]


@pytest.fixture
def three(db: Any) -> World:
    return build_world(db, companies=3, stores=2, customers=12)


def _flat(text: str) -> str:
    # PDF text extraction spaces glyphs and breaks lines anywhere; compare without whitespace.
    return re.sub(r"\s+", "", text)


def test_markdown_reports_for_every_affected_company_into_a_directory(three: World, tmp_path: Path) -> None:
    t0, t1, t2 = three.tenants
    ref = affected_incident(three)
    out = tmp_path / "reports"

    assert run(["incident", "report", ref, "--kind", "preliminary", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"report-preliminary-{t.company.public_id}-ja.md" for t in (t0, t1))
    text = (out / f"report-preliminary-{t0.company.public_id}-ja.md").read_text()
    assert "個人データの漏えい等報告書（速報）案" in text
    for number, heading in enumerate(HEADINGS_JA, start=1):
        assert f"## {number}. {heading}" in text
    assert "10人" in text and "| 電話番号 | 6人 |" in text and "調査中" in text
    assert "委託元" in text and "委託先" in text and "連名" in text
    assert "本人への通知（文案）" in text and t2.company.name not in text
    with three.db.session() as session:
        entries = [e for e in timeline(session, get_incident(session, ref)) if e.kind == "report"]
    assert len(entries) == 1 and entries[0].kind == "report"
    assert set(entries[0].data["companies"]) == {t0.company.public_id, t1.company.public_id}


def test_json_report_in_english_has_every_item_and_the_rules(three: World, capsys: Any) -> None:
    _, t1, _ = three.tenants
    ref = affected_incident(three)
    args = ["incident", "report", ref, "--kind", "final", "--company", t1.company.public_id]
    assert run([*args, "--lang", "en", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["key"] for item in data["items"]] == list(ITEM_KEYS)
    assert data["controller"]["id"] == t1.company.public_id and data["processors"][0]["app"] == "invoice-plus"
    assert data["persons"] == 8
    assert data["fields"] == [
        {"field": "name", "label": "name", "persons": 4},
        {"field": "phone", "label": "phone number", "persons": 6},
    ]
    # Unauthorised access is suspected (the default): mandatory, and the final report has 60 days.
    assert data["mandatory"]["required"] is True
    assert [r["code"] for r in data["mandatory"]["reasons"]] == ["unauthorized_access"]
    assert data["deadlines"]["final"]["days"] == 60
    cause = next(i for i in data["items"] if i["key"] == "cause")
    assert cause["text"].startswith("Under investigation")

    with three.db.session() as session:
        session.execute(update(Incident).where(Incident.public_id == ref).values(unauthorized_access=False))
    assert run([*args, "--lang", "en", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["deadlines"]["final"]["days"] == 30
    assert data["mandatory"] == {"required": False, "reasons": []}  # 8 persons, no unauthorised access


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pdf_carries_the_japanese_text(three: World, tmp_path: Path, lang: str) -> None:
    t0, _, _ = three.tenants
    ref = affected_incident(three)
    pdf = tmp_path / "out" / f"report-{lang}.pdf"
    args = ["incident", "report", ref, "--kind", "preliminary", "--company", t0.company.public_id]
    assert run([*args, "--lang", lang, "--format", "pdf", "--out", str(pdf)]) == 0

    body = pdf.read_bytes()
    assert len(read_pdf(body).pages) >= 2
    fonts = embedded_fonts(body)
    # The Japanese font is embedded: the system's Noto Sans CJK, or the packaged Noto Sans JP without it.
    assert any("NotoSansCJK" in name or "NotoSansJP" in name for name in fonts), fonts
    text = flat_text(body)
    if lang == "ja":
        assert _flat("個人データの漏えい等報告書（速報）案") in text
        for heading in HEADINGS_JA:
            assert _flat(heading) in text, heading
        assert _flat("本人の数") in text and "10人" in text
    else:
        assert "Reportofapersonaldatabreach(preliminary)" in text
        assert "個人データの項目" in text and "本人の数" in text  # the Japanese terms in English headings
    assert _flat(t0.company.name) in text


def test_bad_requests_write_nothing(three: World, tmp_path: Path, capsys: Any) -> None:
    _, _, t2 = three.tenants
    ref = affected_incident(three)
    out = tmp_path / "none.md"
    base = ["incident", "report", ref, "--kind", "preliminary"]
    assert run([*base, "--company", t2.company.public_id, "--out", str(out)]) == 1
    assert "no exposed customers" in capsys.readouterr().err and not out.exists()
    assert run([*base, "--format", "pdf"]) == 1
    assert "--out" in capsys.readouterr().err
    assert run(["incident", "report", ref, "--kind", "interim"]) == 1
    assert "preliminary or final" in capsys.readouterr().err
    assert run([*base, "--lang", "fr"]) == 1
    assert run([*base, "--format", "docx"]) == 1
    assert run(["incident", "report", "inc_missing", "--kind", "final"]) == 1
    with three.db.session() as session:
        assert not [e for e in timeline(session, get_incident(session, ref)) if e.kind == "report"]


def test_admin_api_report(three: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    t0, _, t2 = three.tenants
    ref = affected_incident(three)
    url = f"/admin/incidents/{ref}/report"
    params = {"company": t0.company.public_id, "kind": "final", "lang": "ja"}
    data = client.get(url, params=params, headers=admin_headers).json()
    assert data["kind"] == "final" and data["persons"] == 10 and len(data["items"]) == 9
    pdf = client.get(url, params=params | {"format": "pdf"}, headers=admin_headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    md = client.get(url, params=params | {"format": "md", "lang": "en"}, headers=admin_headers)
    assert md.text.startswith("# Report of a personal data breach (final)")
    other = client.get(url, params={"company": t2.company.public_id}, headers=admin_headers)
    assert other.status_code == 404 and other.json()["code"] == "company_not_affected"
    bad = client.get(url, params=params | {"kind": "interim"}, headers=admin_headers)
    assert bad.status_code == 422
    assert client.get(url, params=params).status_code == 401
