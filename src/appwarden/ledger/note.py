"""Signed notes and checkpoints, byte for byte as C2SP specifies them (pure: no files, no database).

- c2sp.org/signed-note: a text ending in a newline, a blank line, then signature lines
  ``— <key name> <base64(4-byte key ID || signature)>``. For Ed25519 (signature type 0x01) the key ID is
  ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]`` and the signature is RFC 8032 over the
  text (final newline included, separating blank line not).
- c2sp.org/tlog-checkpoint: the text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (extension
  lines after that are allowed and ignored).
- Keys in the encodings of golang.org/x/mod/sumdb/note, so Go tooling and witnesses read them as they are:
  verifier ``<name>+<8 hex digits key ID>+<base64(0x01 || public key)>`` and signer
  ``PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || 32-byte seed)>``.

appwarden's ledger is a keyed hash chain, not a Merkle tree: its checkpoint's "tree size" is the number
of entries and its "root hash" the chain's hash at that entry (the head). A verifier checks that the log
extends a checkpoint by recomputing the chain up to that size, instead of asking for a consistency proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
SIG_PREFIX = "— "  # em dash (U+2014) and a space
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16; Go's reference accepts 100
MAX_NOTE_BYTES = 1 << 20


class NoteError(ValueError):
    """A note, checkpoint or key that is malformed, or whose signature does not verify."""


def key_id(name: str, public_key: bytes) -> int:
    """The Ed25519 key ID of signed-note: the first four bytes of SHA-256(name || 0x0A || 0x01 || key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int(struct.unpack(">I", digest[:4])[0])


def valid_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces or '+' (signed-note)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError("invalid base64") from exc


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key: the ``<name>+<key ID>+<base64>`` verifier key of a log."""

    name: str
    public_key: bytes  # 32 bytes, RFC 8032 encoding

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key text (public: safe to print, publish and put in notices)."""
        data = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{data}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a verifier key, checking its name, algorithm and that its key ID matches the key."""
        name, sep1, rest = vkey.strip().partition("+")
        hash_hex, sep2, data = rest.partition("+")
        if not (sep1 and sep2) or not valid_name(name):
            raise NoteError("malformed verifier key")
        if len(hash_hex) != 8 or any(c not in "0123456789abcdef" for c in hash_hex):
            raise NoteError("malformed verifier key ID")
        raw = _b64(data)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        verifier = cls(name, raw[1:])
        if verifier.key_id != int(hash_hex, 16):
            raise NoteError("verifier key ID does not match the key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key. Its text form is a secret: never print, log or repr it."""

    name: str
    seed: bytes  # 32 bytes

    def __repr__(self) -> str:  # dataclass' repr would show the seed
        return f"Signer(name={self.name!r})"

    @property
    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, _raw_public(self._key.public_key()))

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not valid_name(name):
            raise NoteError(f"{name!r} cannot be a key name (no spaces or '+')")
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    def skey(self) -> str:
        """The ``PRIVATE+KEY+…`` text, for the key file only."""
        data = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{data}"

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Read a ``PRIVATE+KEY+<name>+<key ID>+<base64>`` signer key; errors never echo the key."""
        parts = skey.strip().split("+", 4)  # the base64 part may contain '+' itself
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not valid_name(parts[2]):
            raise NoteError("malformed signer key (expected PRIVATE+KEY+<name>+<key ID>+<key>)")
        raw = _b64(parts[4])
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 key")
        signer = cls(parts[2], raw[1:])
        if f"{signer.verifier.key_id:08x}" != parts[3]:
            raise NoteError("signer key ID does not match the key")
        return signer

    def sign_line(self, text: bytes) -> str:
        """The signature line for ``text``: ``— <name> <base64(key ID || signature)>\\n``."""
        blob = struct.pack(">I", self.verifier.key_id) + self._key.sign(text)
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def sign_note(text: str, signer: Signer) -> str:
    """A signed note: the text (which must end in a newline), a blank line and the signature line."""
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    return text + "\n" + signer.sign_line(text.encode())


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text if a signature by ``verifier`` is on it and verifies; else :class:`NoteError`.

    Signatures by other keys are ignored (witness cosignatures, rotated keys), as the spec requires.
    """
    data = note.encode()
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("note too large")
    if any(c < 0x20 and c != 0x0A for c in data):
        raise NoteError("malformed note: control characters")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("malformed note: no signature block")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block.removesuffix("\n").split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    verified = False
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, sep, sig = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not valid_name(name):
            raise NoteError("malformed signature line")
        blob = _b64(sig)
        if len(blob) < 5:
            raise NoteError("malformed signature")
        if name != verifier.name or int(struct.unpack(">I", blob[:4])[0]) != verifier.key_id:
            continue  # someone else's key
        if not verifier.verify(text.encode(), blob[4:]):
            raise NoteError(f"invalid signature by {verifier.name}")
        verified = True
    if not verified:
        raise NoteError(f"not signed by {verifier.name}+{verifier.key_id:08x}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint: the log's origin, its size and the hash at that size (the chain's head)."""

    origin: str
    size: int
    root_hash: bytes

    @property
    def hash_hex(self) -> str:
        """The root hash as the ledger stores hashes (hex)."""
        return self.root_hash.hex()

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n"

    def sign(self, signer: Signer) -> str:
        """The signed checkpoint (the key name is the origin, as the spec recommends)."""
        return sign_note(self.text(), signer)

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        """Read a checkpoint body (already verified: the caller opened the note)."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
            raise NoteError("malformed checkpoint: expected origin, size and hash lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError("malformed checkpoint size")
        root_hash = _b64(root)
        if len(root_hash) != 32:
            raise NoteError("malformed checkpoint hash (expected 32 bytes)")
        return cls(origin, int(size), root_hash)

    @classmethod
    def open(cls, note: str, verifier: Verifier) -> Checkpoint:
        """Verify a signed checkpoint with ``verifier`` and read it; its origin must be the key's name."""
        checkpoint = cls.parse_text(open_note(note, verifier))
        if checkpoint.origin != verifier.name:
            raise NoteError(f"checkpoint is for {checkpoint.origin!r}, not {verifier.name!r}")
        return checkpoint
