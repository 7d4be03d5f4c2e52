"""Evidence files: type judged by content (not by name or header), size capped, stored by SHA-256.

The bytes go to ``data_dir/evidence/<first two hex>/<sha256>`` (written once, atomically; a second
upload of the same content reuses it); the metadata row is ``EvidenceFile``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from appwarden.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
ALLOWED = "PDF, PNG, JPEG or UTF-8 text"


def sniff(content: bytes) -> str:
    """The media type of ``content`` from its bytes; 415 ``unsupported_media_type`` for anything else."""
    for magic, media_type in SIGNATURES:
        if content.startswith(magic):
            return media_type
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaType(f"evidence must be {ALLOWED}; this file is none of them") from None
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise UnsupportedMediaType(f"evidence must be {ALLOWED}; this text holds control characters")
    return "text/plain"


def check(content: bytes, *, max_bytes: int) -> tuple[str, str]:
    """``(media type, sha256)`` of acceptable evidence, or a 413 / 415 / 422."""
    if not content:
        raise InvalidInput("the evidence file is empty", code="empty_file")
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"evidence is over the {max_bytes:,}-byte limit", limit=max_bytes)
    return sniff(content), hashlib.sha256(content).hexdigest()


def store(root: Path, digest: str, content: bytes) -> Path:
    """Write ``content`` under its hash once (temporary file, then rename) and return the path."""
    folder = root / "evidence" / digest[:2]
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / digest
    if path.exists():
        return path
    tmp = folder / f".{digest}.{os.getpid()}.tmp"
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return path


def clean_filename(name: str) -> str:
    """A display name: no path, no control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or any(ord(c) < 32 for c in base) or len(base) > 200:
        raise InvalidInput("filename must be 1-200 printable characters", code="invalid_filename")
    return base
