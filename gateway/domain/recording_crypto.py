"""How a recording is sealed: per-recording data keys, chunked AES-256-GCM, wrapped keys.

Pure computation (no I/O): the vault (gateway/adapters/recording_vault.py) writes what this
module produces and feeds back what it reads.

A recording file is a header and a sequence of chunk records:

    header  MAGIC (8 bytes) | recording id (32 ASCII hex) | nonce prefix (4 bytes)
    record  ciphertext length (4 bytes, big-endian) | ciphertext (plaintext + 16-byte GCM tag)

Each chunk is at most `CHUNK_PLAINTEXT` bytes of plaintext, encrypted under the recording's own
256-bit data key with nonce = prefix | chunk index (8 bytes), so a nonce is never reused under a
key. The associated data binds the recording id, the chunk's index and its kind:

    MORE      another chunk follows
    FINAL     the recording was sealed by its writer (complete)
    CRASHED   the recording was sealed by recovery after its writer died (incomplete)

so a reader detects a chunk dropped, reordered or swapped in from another recording (the
tag fails), and truncation (no final chunk). A reader never returns a chunk whose tag has not
been checked.

Data keys are wrapped with the master key (AES-256-GCM, random nonce, associated data binding
the recording id): a wrapped key moved to another recording's row does not unwrap. Destroying
the wrapped key makes the ciphertext unreadable for good (crypto-shredding).
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CHUNK_PLAINTEXT",
    "HEADER_BYTES",
    "KEY_BYTES",
    "LENGTH_BYTES",
    "MAGIC",
    "TAG_BYTES",
    "ChunkKind",
    "RecordingCorrupt",
    "RecordingKeyError",
    "RecoveredFile",
    "decrypt_chunk",
    "encrypt_chunk",
    "new_data_key",
    "new_nonce_prefix",
    "pack_header",
    "unpack_header",
    "unwrap_data_key",
    "wrap_data_key",
]

MAGIC = b"SGWREC1\n"
KEY_BYTES = 32
PREFIX_BYTES = 4
ID_BYTES = 32
HEADER_BYTES = len(MAGIC) + ID_BYTES + PREFIX_BYTES
LENGTH_BYTES = 4
TAG_BYTES = 16
CHUNK_PLAINTEXT = 64 * 1024
MAX_CHUNK_CIPHERTEXT = CHUNK_PLAINTEXT + TAG_BYTES
_CHUNK_AD = b"sgw-recording-chunk-v1"
_KEY_AD = b"sgw-recording-key-v1"


class ChunkKind(enum.IntEnum):
    MORE = 0
    FINAL = 1
    CRASHED = 2


class RecordingCorrupt(Exception):
    """The ciphertext is damaged, truncated, reordered or not this recording's: nothing of the
    offending chunk is returned."""


class RecordingKeyError(Exception):
    """A data key cannot be unwrapped (wrong master key, or a key moved between recordings)."""


@dataclass(frozen=True, slots=True)
class RecoveredFile:
    """What recovery found: sealed by its writer before dying (only the catalogue lagged), or
    sealed now as incomplete; its size on storage and chunk count."""

    complete: bool
    size: int
    chunks: int


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def new_nonce_prefix() -> bytes:
    return os.urandom(PREFIX_BYTES)


def _recording_id_bytes(recording_id: str) -> bytes:
    raw = recording_id.encode("ascii")
    if len(raw) != ID_BYTES:
        raise ValueError("a recording id is 32 hex characters")
    return raw


def pack_header(recording_id: str, prefix: bytes) -> bytes:
    if len(prefix) != PREFIX_BYTES:
        raise ValueError("nonce prefix must be 4 bytes")
    return MAGIC + _recording_id_bytes(recording_id) + prefix


def unpack_header(header: bytes, recording_id: str) -> bytes:
    """The nonce prefix, after checking the header names `recording_id`."""
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise RecordingCorrupt("not a recording file")
    if header[len(MAGIC) : len(MAGIC) + ID_BYTES] != _recording_id_bytes(recording_id):
        raise RecordingCorrupt("the file belongs to another recording")
    return header[len(MAGIC) + ID_BYTES :]


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">Q", index)


def _chunk_ad(recording_id: str, index: int, kind: ChunkKind) -> bytes:
    return _CHUNK_AD + _recording_id_bytes(recording_id) + struct.pack(">QB", index, kind)


def encrypt_chunk(
    key: bytes, prefix: bytes, recording_id: str, index: int, kind: ChunkKind, plaintext: bytes
) -> bytes:
    """One chunk record (length and ciphertext), ready to append to the file."""
    if len(plaintext) > CHUNK_PLAINTEXT:
        raise ValueError("chunk larger than CHUNK_PLAINTEXT")
    sealed = AESGCM(key).encrypt(
        _nonce(prefix, index), plaintext, _chunk_ad(recording_id, index, kind)
    )
    return struct.pack(">I", len(sealed)) + sealed


def decrypt_chunk(
    key: bytes, prefix: bytes, recording_id: str, index: int, ciphertext: bytes
) -> tuple[ChunkKind, bytes]:
    """The chunk's kind and plaintext; `RecordingCorrupt` unless it authenticates as chunk
    `index` of `recording_id` (under one of the three kinds)."""
    if not TAG_BYTES <= len(ciphertext) <= MAX_CHUNK_CIPHERTEXT:
        raise RecordingCorrupt(f"chunk {index} has an impossible length")
    aead = AESGCM(key)
    for kind in ChunkKind:
        try:
            plain = aead.decrypt(
                _nonce(prefix, index), ciphertext, _chunk_ad(recording_id, index, kind)
            )
        except InvalidTag:
            continue
        return kind, plain
    raise RecordingCorrupt(f"chunk {index} does not authenticate")


def wrap_data_key(master_key: bytes, recording_id: str, data_key: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(master_key).encrypt(
        nonce, data_key, _KEY_AD + _recording_id_bytes(recording_id)
    )


def unwrap_data_key(master_key: bytes, recording_id: str, wrapped: bytes) -> bytes:
    try:
        key = AESGCM(master_key).decrypt(
            wrapped[:12], wrapped[12:], _KEY_AD + _recording_id_bytes(recording_id)
        )
    except (InvalidTag, ValueError) as exc:
        raise RecordingKeyError("the recording's key does not unwrap") from exc
    if len(key) != KEY_BYTES:
        raise RecordingKeyError("the recording's key has the wrong length")
    return key
