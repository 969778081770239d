"""Recording files at rest: encrypted as they are written, read back only when authentic.

`RecordingStorage` is the port (where ciphertext lives); `LocalRecordingStorage` keeps each
recording as one file `<dir>/<recording id>.sgwrec` (directory 0700, files 0600; the name is
the random id, never a person's). The port is shaped so an S3-compatible store fits later: a
sink that only appends and syncs (a multipart upload), a reader that reads forward, delete that
is idempotent, and `reseal` (recovery) that keeps a prefix and appends (copy-part + a last part).

`RecordingWriter` is what the recorder calls: `append(encoded media)` any number of times, then
`seal()`. Plaintext is buffered in memory only until a chunk is full (`CHUNK_PLAINTEXT`), then
encrypted and written; nothing unencrypted is ever handed to the storage. The writer is
synchronous (a chunk is encrypted in tens of microseconds); the recorder calls it from its own
thread or through `asyncio.to_thread`.

`RecordingReader.chunks()` yields the plaintext of each chunk only after its tag is checked and
raises `RecordingCorrupt` at the first chunk that is damaged, missing or out of place, or when the
final chunk is missing (truncation). `verify()` reads everything first: playback that must never
show a partial recording verifies, then streams.

`recover_file` is what start-up does for a recording whose writer died (SIGKILL, power cut):
it keeps the authenticated chunks, drops a torn tail, and seals the file with a CRASHED final
chunk, so the recording reads back as exactly what was written and says it is incomplete.

The master key comes from a file (`GATEWAY_RECORDING_MASTER_KEY_FILE`): 32 raw bytes, or their
base64 on one line. `load_master_key` refuses a missing, unreadable, wrong-sized or
world-readable file with one clear `RecordingVaultUnavailable`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from gateway.adapters.private_files import FILE_MODE, private_directory
from gateway.domain.recording_crypto import (
    CHUNK_PLAINTEXT,
    HEADER_BYTES,
    KEY_BYTES,
    LENGTH_BYTES,
    MAX_CHUNK_CIPHERTEXT,
    ChunkKind,
    RecordingCorrupt,
    RecoveredFile,
    decrypt_chunk,
    encrypt_chunk,
    new_nonce_prefix,
    pack_header,
    unpack_header,
)

__all__ = [
    "LocalRecordingStorage",
    "RecordingReader",
    "RecordingSink",
    "RecordingStorage",
    "RecordingVault",
    "RecordingVaultUnavailable",
    "RecordingWriter",
    "load_master_key",
    "recover_file",
]

RECORDING_ID = re.compile(r"[0-9a-f]{32}")
SUFFIX = ".sgwrec"


class RecordingVaultUnavailable(Exception):
    """Recording cannot start: the master key or the storage is not usable. The message names
    the setting to fix and never carries key material."""


def load_master_key(path: Path | None) -> bytes:
    setting = "GATEWAY_RECORDING_MASTER_KEY_FILE"
    if path is None:
        raise RecordingVaultUnavailable(f"recording is off: {setting} is not set")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordingVaultUnavailable(
            f"recording is off: the master key file named by {setting} cannot be read"
            f" ({exc.strerror})"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RecordingVaultUnavailable(
            f"recording is off: the master key file named by {setting} is readable by others"
            " (chmod 600 it)"
        )
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise RecordingVaultUnavailable(
            f"recording is off: the master key file named by {setting} must hold 32 bytes"
            " (raw or base64)"
        )
    return key


class RecordingSink(Protocol):
    def write(self, data: bytes) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class RecordingStorage(Protocol):
    def create(self, recording_id: str) -> RecordingSink:
        """A new, empty object for `recording_id` (an existing one is an error)."""
        ...

    def open_read(self, recording_id: str) -> BinaryIO:
        """Read the object forward; `FileNotFoundError` when there is none."""
        ...

    def size(self, recording_id: str) -> int | None: ...

    def reseal(self, recording_id: str, keep: int, tail: bytes) -> None:
        """Keep the first `keep` bytes, drop the rest, append `tail`, make it durable."""
        ...

    def delete(self, recording_id: str) -> bool:
        """Remove the object; False when there was none (deleting twice is not an error)."""
        ...

    def ids(self) -> Iterator[str]: ...


def _check_id(recording_id: str) -> str:
    if not RECORDING_ID.fullmatch(recording_id):
        raise ValueError("not a recording id")
    return recording_id


class _FileSink:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LocalRecordingStorage:
    """One file per recording under `directory` (0700), each file 0600."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        private_directory(directory)

    def path(self, recording_id: str) -> Path:
        return self.directory / f"{_check_id(recording_id)}{SUFFIX}"

    def create(self, recording_id: str) -> _FileSink:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path(recording_id), flags, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        return _FileSink(fd)

    def open_read(self, recording_id: str) -> BinaryIO:
        return self.path(recording_id).open("rb")

    def size(self, recording_id: str) -> int | None:
        try:
            return self.path(recording_id).stat().st_size
        except FileNotFoundError:
            return None

    def reseal(self, recording_id: str, keep: int, tail: bytes) -> None:
        fd = os.open(self.path(recording_id), os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
            sink = _FileSink(fd)
            sink.write(tail)
            sink.sync()
        finally:
            os.close(fd)

    def delete(self, recording_id: str) -> bool:
        try:
            self.path(recording_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def ids(self) -> Iterator[str]:
        for entry in self.directory.iterdir():
            stem = entry.name.removesuffix(SUFFIX)
            if entry.name.endswith(SUFFIX) and RECORDING_ID.fullmatch(stem):
                yield stem


class RecordingWriter:
    """Encrypts a recording as it is written: open (constructor) -> append(...) -> seal()."""

    def __init__(self, storage: RecordingStorage, recording_id: str, data_key: bytes) -> None:
        self.recording_id = _check_id(recording_id)
        self._key = data_key
        self._prefix = new_nonce_prefix()
        self._buffer = bytearray()
        self._index = 0
        self._sealed = False
        self.bytes_written = 0
        self._sink = storage.create(recording_id)
        self._put(pack_header(recording_id, self._prefix))

    def _put(self, data: bytes) -> None:
        self._sink.write(data)
        self.bytes_written += len(data)

    def _emit(self, kind: ChunkKind, plaintext: bytes) -> None:
        self._put(
            encrypt_chunk(self._key, self._prefix, self.recording_id, self._index, kind, plaintext)
        )
        self._index += 1

    def append(self, data: bytes) -> None:
        """Add encoded media; full chunks are encrypted and written at once."""
        if self._sealed:
            raise RuntimeError("recording already sealed")
        self._buffer += data
        while len(self._buffer) > CHUNK_PLAINTEXT:
            # Strictly more than a chunk: the last chunk is written by seal() as FINAL.
            chunk = bytes(self._buffer[:CHUNK_PLAINTEXT])
            del self._buffer[:CHUNK_PLAINTEXT]
            self._emit(ChunkKind.MORE, chunk)

    def seal(self) -> tuple[int, int]:
        """Write the final chunk, make the file durable; (bytes on storage, chunk count)."""
        if not self._sealed:
            self._emit(ChunkKind.FINAL, bytes(self._buffer))
            self._buffer.clear()
            self._sink.sync()
            self._sink.close()
            self._sealed = True
        return self.bytes_written, self._index

    def abort(self) -> None:
        """Stop without sealing (the storage failed): recovery seals it as incomplete."""
        self._buffer.clear()
        with contextlib.suppress(OSError):
            self._sink.close()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    return data if data is not None else b""


def _records(
    stream: BinaryIO, key: bytes, recording_id: str
) -> Iterator[tuple[int, ChunkKind, bytes]]:
    """(offset after the record, kind, plaintext) for each authentic chunk, in order."""
    prefix = unpack_header(_read_exact(stream, HEADER_BYTES), recording_id)
    offset = HEADER_BYTES
    index = 0
    while True:
        length_bytes = _read_exact(stream, LENGTH_BYTES)
        if not length_bytes:
            return
        if len(length_bytes) != LENGTH_BYTES:
            raise RecordingCorrupt(f"chunk {index} is cut short")
        (length,) = struct.unpack(">I", length_bytes)
        if length > MAX_CHUNK_CIPHERTEXT:
            raise RecordingCorrupt(f"chunk {index} has an impossible length")
        sealed = _read_exact(stream, length)
        if len(sealed) != length:
            raise RecordingCorrupt(f"chunk {index} is cut short")
        kind, plain = decrypt_chunk(key, prefix, recording_id, index, sealed)
        offset += LENGTH_BYTES + length
        index += 1
        yield offset, kind, plain


@dataclass(frozen=True, slots=True)
class Verified:
    chunks: int
    plaintext_bytes: int
    complete: bool  # sealed by its writer (False: sealed by recovery)


class RecordingReader:
    def __init__(self, storage: RecordingStorage, recording_id: str, data_key: bytes) -> None:
        self._storage = storage
        self._id = _check_id(recording_id)
        self._key = data_key

    def chunks(self) -> Iterator[bytes]:
        """Each chunk's plaintext once authenticated; `RecordingCorrupt` at the first chunk that
        is not, at anything after the final chunk, or when the final chunk is missing."""
        with self._storage.open_read(self._id) as stream:
            final = False
            for _, kind, plain in _records(stream, self._key, self._id):
                if final:
                    raise RecordingCorrupt("data after the final chunk")
                final = kind is not ChunkKind.MORE
                if plain:
                    yield plain
            if not final:
                raise RecordingCorrupt("the recording is truncated (no final chunk)")

    def verify(self) -> Verified:
        chunks = size = 0
        complete = True
        with self._storage.open_read(self._id) as stream:
            final = False
            for _, kind, plain in _records(stream, self._key, self._id):
                if final:
                    raise RecordingCorrupt("data after the final chunk")
                final = kind is not ChunkKind.MORE
                complete = kind is ChunkKind.FINAL if final else complete
                chunks += 1
                size += len(plain)
        if not final:
            raise RecordingCorrupt("the recording is truncated (no final chunk)")
        return Verified(chunks, size, complete)


def recover_file(storage: RecordingStorage, recording_id: str, data_key: bytes) -> RecoveredFile:
    """Seal a recording whose writer died: keep every authentic chunk, drop what follows the
    last one (a torn write), append a CRASHED final chunk. Running it twice changes nothing."""
    keep = 0
    index = 0
    prefix = b""
    with storage.open_read(recording_id) as stream:
        header = _read_exact(stream, HEADER_BYTES)
        if len(header) == HEADER_BYTES:
            prefix = unpack_header(header, recording_id)
            keep = HEADER_BYTES
            stream.seek(0)
            try:
                for offset, kind, _ in _records(stream, data_key, recording_id):
                    keep, index = offset, index + 1
                    if kind is not ChunkKind.MORE:
                        return RecoveredFile(kind is ChunkKind.FINAL, offset, index)
            except RecordingCorrupt:
                pass  # a torn last write: everything before it stands
    if not prefix:
        # Killed before even the header reached the disk: a header of its own, no chunks.
        prefix = new_nonce_prefix()
        tail = pack_header(recording_id, prefix)
    else:
        tail = b""
    tail += encrypt_chunk(data_key, prefix, recording_id, index, ChunkKind.CRASHED, b"")
    storage.reseal(recording_id, keep, tail)
    return RecoveredFile(False, keep + len(tail), index + 1)


class RecordingVault:
    """The recording services' `RecordingFiles` port over a `RecordingStorage`."""

    def __init__(self, storage: RecordingStorage) -> None:
        self.storage = storage

    def open_writer(self, recording_id: str, data_key: bytes) -> RecordingWriter:
        return RecordingWriter(self.storage, recording_id, data_key)

    def chunks(self, recording_id: str, data_key: bytes) -> Iterator[bytes]:
        return RecordingReader(self.storage, recording_id, data_key).chunks()

    def recover(self, recording_id: str, data_key: bytes) -> RecoveredFile:
        if self.storage.size(recording_id) is None:
            # Killed before the file was created: nothing was written.
            self.storage.create(recording_id).close()
        return recover_file(self.storage, recording_id, data_key)

    def delete(self, recording_id: str) -> bool:
        return self.storage.delete(recording_id)
