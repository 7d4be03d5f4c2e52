"""Signed checkpoints of the ledger's head, published outside the database.

Someone with write access to the database can delete the newest entries and roll the head back to an
older, genuine (seq, hash), or wipe entries, head and index together: the chain left behind is intact, so
nothing inside the database can tell. A checkpoint — the head's size and hash in the C2SP tlog-checkpoint
format, signed with the platform's Ed25519 key (:mod:`appwarden.ledger.note`) — taken earlier and kept
elsewhere can: ``ledger verify`` proves the chain still extends every checkpoint it is given.

:func:`publish_checkpoint` signs the current head and writes it to the checkpoint directory (one file per
size, and ``latest``), which ``GET /ledger/checkpoint`` serves to anyone. It runs at every incident,
notice and report, from ``appwarden ledger checkpoint`` (cron), and is the function provision records
call. It refuses to sign a head that does not extend the latest checkpoint (a log must never sign two
inconsistent checkpoints), so a rollback is not laundered by the next signature.

The signing key comes from ``APPWARDEN_CHECKPOINT_KEY`` or is generated once into
``data_dir/checkpoint.key`` (0600); only its public half, the verifier key, is ever shown.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from appwarden.config import Settings, get_settings
from appwarden.db.session import Database
from appwarden.errors import Conflict, InvalidInput, Unavailable
from appwarden.ledger.chain import GENESIS
from appwarden.ledger.extension import compare
from appwarden.ledger.models import LedgerEntry, LedgerHead
from appwarden.ledger.note import Checkpoint, NoteError, Signer, Verifier

log = logging.getLogger(__name__)

KEY_FILE = "checkpoint.key"
LATEST = "latest"
_LOCK = ".lock"
MAX_FILE_BYTES = 64 << 10  # a checkpoint is a few hundred bytes; anything big is not one


@dataclass(frozen=True)
class Published:
    """A checkpoint just signed: the parsed checkpoint, its signed-note text and where it was written."""

    checkpoint: Checkpoint
    note: str
    path: Path
    vkey: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.checkpoint.origin,
            "size": self.checkpoint.size,
            "hash": self.checkpoint.hash_hex,
            "file": str(self.path),
            "vkey": self.vkey,
            "note": self.note,
        }


def checkpoint_dir(settings: Settings | None = None) -> Path:
    """The checkpoint directory (``APPWARDEN_CHECKPOINT_DIR``, else ``data_dir/checkpoints``)."""
    settings = settings or get_settings()
    return settings.checkpoint_dir or settings.data_dir / "checkpoints"


def _default_origin(settings: Settings) -> str:
    if settings.checkpoint_origin:
        return settings.checkpoint_origin
    host = urlsplit(str(settings.base_url or "")).netloc or "appwarden"
    return f"{host}/ledger"


def signer(settings: Settings | None = None) -> Signer:
    """The platform's checkpoint signing key: configured, else read from (or generated once into) the
    data directory. Errors never contain the key."""
    settings = settings or get_settings()
    if settings.checkpoint_key is not None:
        try:
            return Signer.parse(settings.checkpoint_key.get_secret_value())
        except NoteError as exc:
            raise InvalidInput(f"APPWARDEN_CHECKPOINT_KEY: {exc}", parameter="checkpoint_key") from None
    path = settings.ensure_data_dir() / KEY_FILE
    if not path.exists():
        key = Signer.generate(_default_origin(settings))
        try:
            # 0600 from creation, so the key is never readable by others; O_EXCL: one winner if racing.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(key.skey() + "\n")
            log.info("generated checkpoint key %s", key.verifier.vkey)
    try:
        return Signer.parse(path.read_text())
    except NoteError as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def verifier(settings: Settings | None = None) -> Verifier:
    """The platform's verifier key (public)."""
    return signer(settings).verifier


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One publisher at a time per directory (workers, cron and the CLI may overlap)."""
    with open(directory / _LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_note(path: Path) -> str:
    """A checkpoint file's text; a clear error for a missing, unreadable or oversized file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{path}: too large to be a checkpoint")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such checkpoint file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read checkpoint ({exc.__class__.__name__})") from None


def stored_paths(settings: Settings | None = None) -> list[Path]:
    """The directory's checkpoint files, smallest size first (``latest`` is a copy and left out)."""
    directory = checkpoint_dir(settings)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def latest_note(settings: Settings | None = None) -> str | None:
    """The text of the latest published checkpoint, or None before the first one."""
    path = checkpoint_dir(settings) / LATEST
    return read_note(path) if path.is_file() else None


def _previous(directory: Path, key: Verifier) -> Checkpoint | None:
    """The newest checkpoint we signed: ``latest``, else the largest numbered file that verifies."""
    numbered = sorted((p for p in directory.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
    candidates = [directory / LATEST, *numbered]
    for path in candidates:
        try:
            return Checkpoint.open(path.read_text(encoding="utf-8"), key)
        except (OSError, UnicodeDecodeError, NoteError):
            continue  # verify reports a bad file; publishing falls back to the next good one
    return None


def _head(db: Database, previous: Checkpoint | None) -> tuple[int, str, str | None]:
    """(head seq, head hash, the stored hash at the previous checkpoint's size) in one transaction."""
    with db.sessionmaker() as session:
        row = session.execute(select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.id == 1)).first()
        seq, head_hash = (int(row.seq), str(row.hash)) if row is not None else (0, GENESIS)
        if seq and session.scalar(select(LedgerEntry.hash).where(LedgerEntry.seq == seq)) != head_hash:
            raise Conflict(
                f"the ledger head (seq {seq}) does not match its entry: refusing to sign a checkpoint "
                "(run appwarden ledger verify)",
                code="ledger_inconsistent",
            )
        at_previous = None
        if previous is not None and 0 < previous.size <= seq:
            at_previous = session.scalar(select(LedgerEntry.hash).where(LedgerEntry.seq == previous.size))
    return seq, head_hash, at_previous


def publish_checkpoint(
    db: Database, *, reason: str, actor: str = "ledger", settings: Settings | None = None
) -> Published:
    """Sign the ledger's current head and write it to the checkpoint directory; return it.

    ``reason`` says what prompted it (``incident inc_… opened``, ``notices for inc_…``, ``cron``) and is
    recorded with the ``ledger:checkpoint:published`` event. Raises ``Conflict(ledger_rolled_back)`` and
    records ``ledger:chain:tamper-detected`` when the head does not extend the latest checkpoint.
    """
    from appwarden.events.service import EventTag, record

    settings = settings or get_settings()
    key = signer(settings)
    directory = checkpoint_dir(settings)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        with _locked(directory):
            previous = _previous(directory, key.verifier)
            seq, head_hash, at_previous = _head(db, previous)
            cut = None
            if previous is not None:
                cut = compare(previous, length=seq, hash_at=at_previous, head_seq=seq)
            if previous is not None and cut is not None:
                with db.session() as session:
                    record(session, EventTag.LEDGER_TAMPERED, actor=actor, checkpoint=previous.size,
                           detail=cut.detail, reason=reason)  # fmt: skip
                raise Conflict(
                    f"{cut.detail}; refusing to sign a checkpoint that does not extend it "
                    "(run appwarden ledger verify)",
                    code="ledger_rolled_back",
                )
            checkpoint = Checkpoint(key.name, seq, bytes.fromhex(head_hash))
            note = checkpoint.sign(key)
            path = directory / str(seq)
            _write(path, note)
            _write(directory / LATEST, note)
    except OSError as exc:
        raise Unavailable(
            f"cannot write checkpoints to {directory} ({exc.__class__.__name__})",
            code="checkpoint_unavailable",
        ) from None
    with db.session() as session:
        record(session, EventTag.LEDGER_CHECKPOINTED, actor=actor, size=seq, hash=head_hash, reason=reason)
    return Published(checkpoint, note, path, key.verifier.vkey)


@dataclass(frozen=True)
class Given:
    """A checkpoint offered to ``verify``: where it came from, and either the checkpoint or why not."""

    source: str
    checkpoint: Checkpoint | None
    error: str | None = None


def stored_notes(settings: Settings | None = None) -> list[tuple[str, str | None]]:
    """``(path, text)`` for each file in the checkpoint directory; None for one that cannot be read."""
    notes: list[tuple[str, str | None]] = []
    for path in stored_paths(settings):
        try:
            notes.append((str(path), read_note(path)))
        except InvalidInput:
            notes.append((str(path), None))  # refused by open_all: a bad file must not stop the check
    return notes


def open_all(sources: Iterable[tuple[str, str | None]], key: Verifier) -> list[Given]:
    """Verify each ``(source, note text)`` with ``key``; a forged or malformed one is refused, not used."""
    out: list[Given] = []
    for source, text in sources:
        if text is None:
            out.append(Given(source, None, "cannot be read"))
            continue
        try:
            out.append(Given(source, Checkpoint.open(text, key)))
        except NoteError as exc:
            out.append(Given(source, None, str(exc)))
    return out
