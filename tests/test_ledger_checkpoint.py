"""Signed ledger checkpoints (issue 9, point 6): the C2SP format, publishing outside the database, and
``ledger verify`` catching what the chain alone cannot — truncation with the head rolled back, a wipe of
entries, head and index, a rewrite — and reporting an entry forged at the head as an insertion.

Every attack is made in SQL, as someone with database write access only; real SQLite, and PostgreSQL
when ``APPWARDEN_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from pyroaring import BitMap
from sqlalchemy import select, text

from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Conflict
from appwarden.events.models import SecurityEvent
from appwarden.ledger.chain import decode_payload
from appwarden.ledger.checkpoint import KEY_FILE, checkpoint_dir, publish_checkpoint, verifier
from appwarden.ledger.models import LedgerEntry, LedgerIndex
from appwarden.ledger.note import Checkpoint, NoteError, Signer, Verifier, open_note, sign_note
from appwarden.ledger.verify import verify
from conftest import World, build_world
from test_ledger import _chain, _insert_forged, _record
from test_notices import affected_incident

# golang.org/x/mod/sumdb/note's own test key and note: Ed25519 is deterministic (RFC 8032), so a correct
# implementation reproduces the published signature byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def _spec_key_id(name: str, public_key: bytes) -> bytes:
    """The key ID exactly as c2sp.org/signed-note defines it for Ed25519, computed here on its own."""
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public_key).digest()[:4]


def test_signed_note_matches_the_go_reference_vector() -> None:
    signer = Signer.parse(GO_SKEY)
    assert signer.verifier.vkey == GO_VKEY
    assert signer.skey() == GO_SKEY
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    assert _spec_key_id("PeterNeumann", public).hex() == "c74f20a3"
    note = sign_note(GO_TEXT, signer)
    assert note == f"{GO_TEXT}\n— PeterNeumann {GO_SIG}\n"
    key = Verifier.parse(GO_VKEY)
    assert open_note(note, key) == GO_TEXT
    with pytest.raises(NoteError):
        open_note(note.replace("cryptography", "cryptographY"), key)
    # Signatures by unknown keys are ignored; with no known one the note is rejected.
    other = Signer.generate("PeterNeumann")
    with pytest.raises(NoteError, match="not signed by"):
        open_note(sign_note(GO_TEXT, other), key)
    assert open_note(note + other.sign_line(GO_TEXT.encode()), key) == GO_TEXT
    assert "AYEKFALV" not in repr(signer)  # the seed never reaches a repr or a log line


def test_checkpoint_round_trips_in_the_tlog_checkpoint_format() -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signer = Signer("shop.example/ledger", private.private_bytes_raw())
    root = hashlib.sha256(b"head").digest()
    note = Checkpoint("shop.example/ledger", 1469, root).sign(signer)

    # Read it back with nothing but the specs: body lines, a blank line, "— <name> <base64>".
    body, sig_line = note.split("\n\n")
    assert body.split("\n") == ["shop.example/ledger", "1469", base64.b64encode(root).decode()]
    prefix, name, blob_b64 = sig_line.rstrip("\n").split(" ")
    assert (prefix, name) == ("—", "shop.example/ledger")
    blob = base64.b64decode(blob_b64)
    assert len(blob) == 4 + 64 and blob[:4] == _spec_key_id(name, public)
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], (body + "\n").encode())  # raises if wrong
    key_data = base64.b64encode(bytes([1]) + public).decode()
    vkey = f"{name}+{_spec_key_id(name, public).hex()}+{key_data}"
    assert signer.verifier.vkey == vkey

    opened = Checkpoint.open(note, Verifier.parse(vkey))
    assert (opened.origin, opened.size, opened.root_hash) == ("shop.example/ledger", 1469, root)
    with pytest.raises(NoteError):  # the size changed under the signature
        Checkpoint.open(note.replace("\n1469\n", "\n1470\n"), Verifier.parse(vkey))


# --- publishing -------------------------------------------------------------------------------------


def test_publish_writes_signed_files_outside_the_database(world: World, settings: Settings) -> None:
    entries = _chain(world, 3)
    published = publish_checkpoint(world.db, reason="test")
    directory = checkpoint_dir(settings)
    assert directory == settings.data_dir / "checkpoints"
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == ["3", "latest"]
    assert (directory / "3").read_text() == (directory / "latest").read_text() == published.note
    cp = Checkpoint.open(published.note, Verifier.parse(published.vkey))
    assert (cp.size, cp.hash_hex) == (3, entries[-1].hash)
    key_file = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert secret.startswith("PRIVATE+KEY+") and secret not in published.note + json.dumps(
        published.to_dict()
    )
    _record(world, name_raw=[1])
    assert publish_checkpoint(world.db, reason="test").checkpoint.size == 4
    assert (directory / "3").is_file() and (directory / "4").read_text() == (directory / "latest").read_text()


def test_publish_refuses_to_sign_a_rolled_back_head(world: World) -> None:
    entries = _chain(world)
    publish_checkpoint(world.db, reason="test")
    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    with pytest.raises(Conflict) as caught:
        publish_checkpoint(world.db, reason="test")
    assert caught.value.code == "ledger_rolled_back"
    assert caught.value.detail.startswith(
        "checkpoint at 6 entries: the ledger now has 4 — entries 5–6 were removed and the head rolled back"
    )
    with world.db.session() as session:
        tags = session.scalars(select(SecurityEvent.tag).order_by(SecurityEvent.id)).all()
    assert tags[-1] == "ledger:chain:tamper-detected"


# --- the attacks that passed verify before checkpoints ----------------------------------------------


def _exec(db: Database, sql: str, **params: object) -> None:
    with db.session() as session:
        session.execute(text(sql), params)


def _truncate(db: Database, *, keep: int, head_hash: str) -> None:
    """Delete the entries after ``keep``, roll the head back to the genuine (keep, hash) and make the index
    match what is left (it is not keyed: anyone who can write the tables can recompute it)."""
    _exec(db, "DELETE FROM ledger_entries WHERE seq > :keep", keep=keep)
    _exec(db, "UPDATE ledger_head SET seq = :keep, hash = :hash", keep=keep, hash=head_hash)
    unions: dict[tuple[int, int, str, str], BitMap] = {}
    with db.session() as session:
        for entry in session.scalars(select(LedgerEntry)):
            for (fld, mode), bitmap in decode_payload(entry.payload).items():
                unions.setdefault((entry.app_id, entry.company_id, fld, mode), BitMap()).update(bitmap)
        for row in session.scalars(select(LedgerIndex)):
            union = unions.get((row.app_id, row.company_id, row.field, row.mode))
            if not union:
                session.delete(row)
            else:
                row.bitmap, row.cardinality = union.serialize(), len(union)


def _problems(db: Database, **kwargs: object) -> list[tuple[str, int, str]]:
    return [(p.kind, p.position, p.detail) for p in verify(db, **kwargs).problems]  # type: ignore[arg-type]


def test_truncation_with_head_rollback_is_caught_by_the_checkpoint(world: World) -> None:
    entries = _chain(world)
    publish_checkpoint(world.db, reason="test")
    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    assert verify(world.db, checkpoints=[]).intact  # the database alone cannot tell: that is the attack
    assert _problems(world.db) == [
        (
            "truncated",
            5,
            "checkpoint at 6 entries: the ledger now has 4 — "
            "entries 5–6 were removed and the head rolled back",
        )
    ]


def test_wiping_entries_head_and_index_is_caught(world: World) -> None:
    _chain(world)
    publish_checkpoint(world.db, reason="test")
    for table in ("ledger_entries", "ledger_head", "ledger_index"):
        _exec(world.db, f"DELETE FROM {table}")
    assert verify(world.db, checkpoints=[]).intact
    report = verify(world.db)
    assert [(p.kind, p.position, p.count, p.detail) for p in report.problems] == [
        (
            "wiped",
            1,
            6,
            "checkpoint at 6 entries: the ledger is empty — all 6 entries, head and index were wiped",
        )
    ]
    assert report.checkpoints[0]["status"] == "wiped"


def test_a_rewritten_history_is_caught(world: World) -> None:
    entries = _chain(world)
    publish_checkpoint(world.db, reason="test")
    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    _chain(world, 2)  # the recorder carries on from the rolled-back head: 6 genuine-looking entries again
    assert verify(world.db, checkpoints=[]).intact
    (problem,) = _problems(world.db)
    assert problem[:2] == ("rewritten", 6)
    assert problem[2].startswith("checkpoint at 6 entries: rewritten — the chain's hash at 6 differs")


def test_an_entry_forged_at_the_head_is_an_insertion_not_an_edit(world: World) -> None:
    entries = _chain(world)
    _insert_forged(world, seq=7, prev_hash=entries[-1].hash)
    _exec(world.db, "UPDATE ledger_head SET seq = 7, hash = :h", h="f" * 64)  # the head moved onto it
    (problem,) = _problems(world.db)  # no checkpoint published: the chain alone must say it
    assert problem[:2] == ("inserted", 7)
    assert "forged entry at the head" in problem[2]


def test_two_entries_forged_at_the_head_are_one_insertion(world: World) -> None:
    entries = _chain(world)
    _insert_forged(world, seq=7, prev_hash=entries[-1].hash)
    _exec(world.db, "UPDATE ledger_entries SET hash = :h WHERE seq = 7", h="e" * 64)
    _insert_forged(world, seq=8, prev_hash="e" * 64)
    _exec(world.db, "UPDATE ledger_head SET seq = 8, hash = :h", h="f" * 64)
    report = verify(world.db)
    assert [(p.kind, p.position, p.count) for p in report.problems] == [("inserted", 7, 2)]


def test_the_newest_entry_edited_under_a_checkpoint_is_an_edit(world: World) -> None:
    _chain(world)
    publish_checkpoint(world.db, reason="test")  # vouches for entry 6's hash
    _exec(world.db, "UPDATE ledger_entries SET endpoint = '/v1/elsewhere' WHERE seq = 6")
    assert [(k, pos) for k, pos, _ in _problems(world.db)] == [("altered", 6)]


def test_a_forged_checkpoint_is_refused(world: World, tmp_path: Path) -> None:
    entries = _chain(world)
    genuine = publish_checkpoint(world.db, reason="test")
    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    # An attacker signs a checkpoint matching the truncated ledger, under the platform's key name.
    platform = verifier()
    impostor = Signer.generate(platform.name)
    forged = Checkpoint(platform.name, 4, bytes.fromhex(entries[3].hash)).sign(impostor)
    report = verify(world.db, checkpoints=[("forged", forged)])
    assert [(p.kind, p.detail) for p in report.problems] == [
        ("checkpoint_refused", f"forged: not signed by {platform.name}+{platform.key_id:08x}")
    ]
    assert report.summary().startswith("checkpoint REFUSED")
    # The genuine signature over an edited body does not verify either.
    edited = genuine.note.replace("\n6\n", "\n4\n")
    (problem,) = verify(world.db, checkpoints=[("edited", edited)]).problems
    assert problem.kind == "checkpoint_refused" and "invalid signature" in problem.detail


# --- CLI and HTTP ------------------------------------------------------------------------------------


def test_cli_checkpoint_and_verify(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _chain(world)
    assert run(["ledger", "checkpoint", "--json"]) == 0
    published = json.loads(capsys.readouterr().out)
    assert published["size"] == 6 and published["hash"] == entries[-1].hash
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(published["note"])
    assert run(["ledger", "verify", "--checkpoint", str(kept), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoints"] == [
        {"source": str(kept), "origin": published["origin"], "size": 6, "hash": entries[-1].hash,
         "status": "extends", "detail": None}
    ]  # fmt: skip

    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    for path in checkpoint_dir().iterdir():  # the attacker cleans the directory too; the kept copy stays
        path.unlink()
    assert run(["ledger", "verify"]) == 0  # nothing left to hold the ledger to
    capsys.readouterr()
    assert run(["ledger", "verify", "--checkpoint", str(kept)]) == 1
    human = capsys.readouterr().out
    assert human.splitlines()[0] == "ledger TAMPERED: 1 truncated (of 4 entries, head 4)"
    assert human.splitlines()[1] == (
        "truncated: checkpoint at 6 entries: the ledger now has 4 — "
        "entries 5–6 were removed and the head rolled back"
    )

    assert run(["ledger", "verify", "--checkpoint", str(kept), "--key", GO_VKEY]) == 1  # not our key
    assert "checkpoint_refused" in capsys.readouterr().out
    assert run(["ledger", "verify", "--checkpoint", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing'}: no such checkpoint file"


def test_http_checkpoint_is_public(world: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    assert client.get("/ledger/checkpoint").status_code == 404  # none published yet
    entries = _chain(world)
    published = publish_checkpoint(world.db, reason="test")
    response = client.get("/ledger/checkpoint")  # no credentials
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.text == published.note
    key = client.get("/ledger/checkpoint/key")
    assert key.status_code == 200 and key.text.strip() == published.vkey
    assert Checkpoint.open(response.text, Verifier.parse(key.text)).hash_hex == entries[-1].hash

    _truncate(world.db, keep=4, head_hash=entries[3].hash)
    data = client.get("/admin/ledger/verify", headers=admin_headers).json()
    assert [(p["kind"], p["position"]) for p in data["problems"]] == [("truncated", 5)]
    posted = client.post(
        "/admin/ledger/verify", json={"checkpoints": [published.note]}, headers=admin_headers
    ).json()
    assert posted["checkpoints"][0]["status"] == "truncated"
    assert client.post("/admin/ledger/verify", json={"checkpoints": [published.note]}).status_code == 401


def test_the_head_row_and_the_entry_it_names_must_agree_to_sign(world: World) -> None:
    _chain(world, 2)
    _exec(world.db, "UPDATE ledger_head SET hash = :h", h="a" * 64)
    with pytest.raises(Conflict) as caught:
        publish_checkpoint(world.db, reason="test")
    assert caught.value.code == "ledger_inconsistent"
    with world.db.session() as session:
        assert session.scalar(select(LedgerEntry.hash).where(LedgerEntry.seq == 2)) != "a" * 64


# --- published at incidents and carried by notices ----------------------------------------------------


def test_opening_an_incident_publishes_a_checkpoint(world: World, settings: Settings) -> None:
    from appwarden.incident.killswitch import kill_switch
    from appwarden.incident.revocation import RevocationSignal

    entries = _chain(world, 3)
    result = kill_switch(
        world.db, apps=["invoice-plus"], reason="leak", actor="test", signal=RevocationSignal(settings)
    )
    assert result.to_dict()["checkpoint"]["size"] == 3
    assert (checkpoint_dir(settings) / "3").is_file()
    with world.db.session() as session:
        events = session.scalars(
            select(SecurityEvent).where(SecurityEvent.tag == "ledger:checkpoint:published")
        ).all()
    assert [e.data["reason"] for e in events] == [f"incident {result.incident} opened"]
    assert events[0].data["hash"] == entries[-1].hash


@pytest.fixture
def three(db: Database) -> World:
    return build_world(db, companies=3, stores=2, customers=12)


def test_every_notice_carries_the_signed_checkpoint_in_both_languages(three: World, tmp_path: Path) -> None:
    ref = affected_incident(three)
    out = tmp_path / "notices"
    assert run(["incident", "notices", ref, "--out", str(out)]) == 0
    key = verifier()
    latest = (checkpoint_dir() / "latest").read_text()
    size = Checkpoint.open(latest, key).size
    assert size == 3  # the three deliveries the notice's figures are counted from
    for eml in sorted(out.glob("*.eml")):
        message = message_from_bytes(eml.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        parts = [p for p in message.iter_parts() if p.get_content_type() == "text/plain"]
        for part, heading in zip(
            parts, ("アプリ提供ログのチェックポイント", "Ledger checkpoint"), strict=True
        ):
            body = part.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
            assert f"## {heading}" in body and key.vkey in body
            # A company can cut the note out of its mail and verify it with nothing but the key.
            note = body.split("```\n")[1]
            assert note == latest and Checkpoint.open(note, key).size == size


def test_a_configured_key_signs_and_a_bad_one_is_never_echoed(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from appwarden.config import get_settings

    monkeypatch.setenv("APPWARDEN_CHECKPOINT_KEY", GO_SKEY)
    get_settings.cache_clear()
    assert "AYEKFALV" not in repr(get_settings())
    assert publish_checkpoint(world.db, reason="test").vkey == GO_VKEY
    assert not (get_settings().data_dir / KEY_FILE).exists()  # nothing generated when one is configured

    broken = GO_SKEY[:-4] + "AAAA"
    monkeypatch.setenv("APPWARDEN_CHECKPOINT_KEY", broken)
    get_settings.cache_clear()
    assert run(["ledger", "checkpoint"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: APPWARDEN_CHECKPOINT_KEY: ") and captured.err.count("\n") == 1
    assert broken.split("+", 4)[4] not in captured.out + captured.err


def test_an_unreadable_or_planted_file_in_the_directory_is_refused_not_fatal(world: World) -> None:
    _chain(world, 2)
    publish_checkpoint(world.db, reason="test")
    directory = checkpoint_dir()
    (directory / "9").write_bytes(b"\xff\xfe not a note")
    (directory / "10").write_text("127.0.0.1:8000/ledger\n10\n" + "A" * 43 + "=\n\n")
    report = verify(world.db)
    assert [(c["source"].rsplit("/", 1)[1], c["status"]) for c in report.checkpoints] == [
        ("2", "extends"), ("9", "refused"), ("10", "refused")
    ]  # fmt: skip
    assert {p.kind for p in report.problems} == {"checkpoint_refused"}
