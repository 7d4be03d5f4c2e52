"""The Japanese report and notice are Japanese: everything the system writes (the kill switch's summary,
the open questions, the reasons, the deadlines) in Japanese; only names, ids, addresses and what an
operator typed stay as they are."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from appwarden.cli import run
from appwarden.incident.context import load_facts
from appwarden.incident.notices import draft_notices
from appwarden.incident.wording import SEED_QUESTIONS
from conftest import World, build_world
from pdf_text import flat_text
from test_blast_radius import deliver

CONTACT = "security@appwarden.example"
TYPED_REASON = "名簿業者サイトで販売"
TYPED_FACT = "vendor confirmed the export endpoint"  # an operator's own words, in English: quoted as typed
# Words a Japanese official document writes in Latin letters.
ALLOWED_WORDS = {"API", "SMS", "appwarden"}
_WORD = re.compile(r"[A-Za-z][A-Za-z'.]*")


@pytest.fixture
def killed(db: Any, capsys: pytest.CaptureFixture[str]) -> tuple[World, str]:
    """The reference scenario in small: invoice-plus served two companies, then the kill switch."""
    world = build_world(db, companies=3, stores=2, customers=12)
    t0, t1, _ = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(10), ("phone", "raw"): range(6)})
    deliver(world, "invoice-plus", t1, {("name", "raw"): range(4), ("phone", "raw"): range(2, 8)})
    world.connect("invoice-plus", t0)
    world.connect("invoice-plus", t1)
    assert run(["incident", "open", "--app", "invoice-plus", "--reason", TYPED_REASON, "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)["incident"]
    assert run(["incident", "fact", ref, "--known", TYPED_FACT]) == 0
    capsys.readouterr()
    return world, ref


def _english(text: str, world: World) -> list[str]:
    """Latin-letter words in ``text`` that are not a name, id, address, file name or allowed term."""
    names = [t.company.name for t in world.tenants] + [s.name for t in world.tenants for s in t.stores]
    names += [slug.title() for slug in world.apps] + list(world.apps) + [TYPED_FACT]
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ").replace(name.replace(" ", ""), " ")
    # Machine-readable text (the signed ledger checkpoint, keys, hashes, commands) is code, not prose.
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = text.replace("Ed25519", " ")  # the signature algorithm's name, as Japanese documents write it
    # ASCII classes: Python's \w and \b count Japanese as word characters.
    text = re.sub(r"[A-Za-z0-9.+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", " ", text)  # email addresses
    text = re.sub(r"https?://[!-~]+", " ", text)
    text = re.sub(r"report-[A-Za-z0-9_-]+\.md", " ", text)  # attachment file names
    text = re.sub(r"(?<![A-Za-z0-9])(inc|co|st)_[A-Za-z0-9_-]+", " ", text)  # public ids
    return [w for w in _WORD.findall(text) if w not in ALLOWED_WORDS]


def test_the_japanese_report_has_no_english_but_what_was_typed(
    killed: tuple[World, str], tmp_path: Path
) -> None:
    world, ref = killed
    company = world.tenants[0].company.public_id
    for kind in ("preliminary", "final"):
        base = ["incident", "report", ref, "--kind", kind, "--company", company, "--lang", "ja"]
        md, pdf, js = (tmp_path / f"{kind}.{ext}" for ext in ("md", "pdf", "json"))
        assert run([*base, "--out", str(md)]) == 0
        assert run([*base, "--format", "pdf", "--out", str(pdf)]) == 0
        assert run([*base, "--format", "json", "--out", str(js)]) == 0
        text = md.read_text()
        assert _english(text, world) == [], kind
        assert _english(flat_text(pdf.read_bytes()), world) == [], kind
        # The kill switch's summary and the open questions, said in Japanese; the typed text as typed.
        assert "キルスイッチにより、アプリ「invoice-plus」を非公開化し" in text
        assert "2社の連携2件を停止した" in text
        assert all(q["ja"] in text and q["en"] not in text for q in SEED_QUESTIONS.values())
        assert TYPED_REASON in text and TYPED_FACT in text
        data = json.loads(js.read_text())
        assert data["deadlines"]["preliminary"]["rule"] == "速やかに（目安3〜5日）"
        for item in data["items"]:
            assert _english(item["heading"] + item["text"], world) == [], item["key"]


def test_the_japanese_notice_has_no_english_but_what_was_typed(killed: tuple[World, str]) -> None:
    world, ref = killed
    drafts = draft_notices(load_facts(world.db, ref), contact=CONTACT)
    assert len(drafts) == 2
    for draft in drafts:
        assert _english(draft.markdown_ja, world) == [], draft.company.id
        report_ja = dict(draft.attachments)[f"report-preliminary-{draft.company.id}-ja.md"]
        assert _english(report_ja, world) == []
    # The English notice words the same facts in English.
    english = drafts[0].markdown_en
    assert "流出の経緯" not in english
    assert (
        "kill switch: invoice-plus delisted"
        in dict(drafts[0].attachments)[f"report-preliminary-{drafts[0].company.id}-en.md"]
    )
