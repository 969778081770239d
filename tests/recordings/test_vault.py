"""Recording files: encrypted as written, read back only when authentic, recovered after a
crash; the master key's refusals."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from gateway.adapters.recording_vault import (
    LocalRecordingStorage,
    RecordingReader,
    RecordingVaultUnavailable,
    RecordingWriter,
    load_master_key,
    recover_file,
)
from gateway.domain.recording_crypto import (
    CHUNK_PLAINTEXT,
    HEADER_BYTES,
    LENGTH_BYTES,
    RecordingCorrupt,
    RecordingKeyError,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)

MARKER = b"PLAINTEXT-MARKER-child-face-frame"
A = "a" * 32
B = "b" * 32


def _media(size: int) -> bytes:
    body = (MARKER * (size // len(MARKER) + 1))[:size]
    return body


def _write(storage: LocalRecordingStorage, rid: str, key: bytes, data: bytes) -> None:
    writer = RecordingWriter(storage, rid, key)
    for start in range(0, len(data), 10_000):
        writer.append(data[start : start + 10_000])
    writer.seal()


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each chunk record."""
    raw = path.read_bytes()
    out, offset = [], HEADER_BYTES
    while offset < len(raw):
        (length,) = struct.unpack(">I", raw[offset : offset + LENGTH_BYTES])
        out.append((offset, LENGTH_BYTES + length))
        offset += LENGTH_BYTES + length
    return out


@pytest.fixture
def storage(tmp_path: Path) -> LocalRecordingStorage:
    return LocalRecordingStorage(tmp_path / "recordings")


def test_round_trip_and_no_plaintext_on_disk(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    data = _media(3 * CHUNK_PLAINTEXT + 123)
    _write(storage, A, key, data)
    on_disk = storage.path(A).read_bytes()
    assert MARKER not in on_disk
    assert os.stat(storage.directory).st_mode & 0o777 == 0o700
    assert os.stat(storage.path(A)).st_mode & 0o777 == 0o600
    assert b"".join(RecordingReader(storage, A, key).chunks()) == data
    verified = RecordingReader(storage, A, key).verify()
    assert verified.complete and verified.plaintext_bytes == len(data) and verified.chunks == 4


def test_empty_recording_reads_back_empty(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    RecordingWriter(storage, A, key).seal()
    assert list(RecordingReader(storage, A, key).chunks()) == []


def _read_all(storage: LocalRecordingStorage, rid: str, key: bytes) -> bytes:
    return b"".join(RecordingReader(storage, rid, key).chunks())


def test_truncation_is_detected(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    _write(storage, A, key, _media(2 * CHUNK_PLAINTEXT + 10))
    path = storage.path(A)
    last_offset, _ = _records(path)[-1]
    # Whole final chunk dropped: every remaining chunk authenticates, yet it is refused.
    os.truncate(path, last_offset)
    with pytest.raises(RecordingCorrupt, match="truncated"):
        _read_all(storage, A, key)
    with pytest.raises(RecordingCorrupt):
        RecordingReader(storage, A, key).verify()
    os.truncate(path, last_offset - 7)  # torn in the middle of a chunk
    with pytest.raises(RecordingCorrupt):
        _read_all(storage, A, key)


def test_a_flipped_bit_is_detected_and_nothing_of_that_chunk_returned(
    storage: LocalRecordingStorage,
) -> None:
    key = new_data_key()
    data = _media(2 * CHUNK_PLAINTEXT + 10)
    _write(storage, A, key, data)
    path = storage.path(A)
    raw = bytearray(path.read_bytes())
    offset, _ = _records(path)[1]
    raw[offset + LENGTH_BYTES + 100] ^= 0x01
    path.write_bytes(bytes(raw))
    got: list[bytes] = []
    with pytest.raises(RecordingCorrupt, match="chunk 1"):
        got.extend(RecordingReader(storage, A, key).chunks())
    assert got == [data[:CHUNK_PLAINTEXT]]  # only the chunk before, authenticated


def test_reordered_chunks_are_detected(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    _write(storage, A, key, _media(3 * CHUNK_PLAINTEXT + 10))
    path = storage.path(A)
    raw = path.read_bytes()
    (o0, l0), (o1, l1), *_ = _records(path)
    swapped = raw[:o0] + raw[o1 : o1 + l1] + raw[o0 : o0 + l0] + raw[o1 + l1 :]
    path.write_bytes(swapped)
    with pytest.raises(RecordingCorrupt, match="chunk 0"):
        _read_all(storage, A, key)


def test_a_chunk_from_another_recording_is_detected(storage: LocalRecordingStorage) -> None:
    # Same key on purpose: even then the recording id in the associated data tells them apart.
    key = new_data_key()
    _write(storage, A, key, _media(2 * CHUNK_PLAINTEXT + 10))
    _write(storage, B, key, _media(2 * CHUNK_PLAINTEXT + 10))
    a, b = storage.path(A), storage.path(B)
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    (oa, la) = _records(a)[0]
    a.write_bytes(raw_a[:oa] + raw_b[oa : oa + la] + raw_a[oa + la :])
    with pytest.raises(RecordingCorrupt, match="chunk 0"):
        _read_all(storage, A, key)
    # A whole file renamed to another recording's name is refused at the header.
    b.replace(a)
    with pytest.raises(RecordingCorrupt, match="another recording"):
        _read_all(storage, A, key)


def test_data_after_the_final_chunk_is_refused(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    _write(storage, A, key, _media(10))
    path = storage.path(A)
    raw = path.read_bytes()
    path.write_bytes(raw + raw[HEADER_BYTES:])
    with pytest.raises(RecordingCorrupt):
        _read_all(storage, A, key)


def test_wrapped_keys_are_bound_to_their_recording() -> None:
    master, data_key = new_data_key(), new_data_key()
    wrapped = wrap_data_key(master, A, data_key)
    assert unwrap_data_key(master, A, wrapped) == data_key
    with pytest.raises(RecordingKeyError):
        unwrap_data_key(master, B, wrapped)
    with pytest.raises(RecordingKeyError):
        unwrap_data_key(new_data_key(), A, wrapped)


def test_recovery_keeps_authentic_chunks_and_seals_incomplete(
    storage: LocalRecordingStorage,
) -> None:
    key = new_data_key()
    writer = RecordingWriter(storage, A, key)
    data = _media(2 * CHUNK_PLAINTEXT + 500)
    writer.append(data)  # two full chunks written, 500 bytes still in memory
    writer.abort()
    path = storage.path(A)
    with path.open("ab") as torn:  # a torn last write
        torn.write(b"\x00\x01\x00")
    result = recover_file(storage, A, key)
    assert not result.complete and result.chunks == 3
    assert b"".join(RecordingReader(storage, A, key).chunks()) == data[: 2 * CHUNK_PLAINTEXT]
    assert not RecordingReader(storage, A, key).verify().complete
    assert recover_file(storage, A, key) == result  # twice changes nothing


def test_recovery_of_a_sealed_file_says_complete(storage: LocalRecordingStorage) -> None:
    key = new_data_key()
    _write(storage, A, key, _media(100))
    assert recover_file(storage, A, key).complete


def test_path_like_ids_are_refused(storage: LocalRecordingStorage) -> None:
    for bad in ("../" + "a" * 29, "A" * 32, "a" * 31, "a" * 32 + "/x"):
        with pytest.raises(ValueError):
            storage.path(bad)


def test_master_key_missing_or_bad_is_one_clear_refusal(tmp_path: Path) -> None:
    with pytest.raises(RecordingVaultUnavailable, match="GATEWAY_RECORDING_MASTER_KEY_FILE"):
        load_master_key(None)
    missing = tmp_path / "master.key"
    with pytest.raises(RecordingVaultUnavailable, match="cannot be read"):
        load_master_key(missing)
    missing.write_bytes(b"short")
    missing.chmod(0o600)
    with pytest.raises(RecordingVaultUnavailable, match="32 bytes"):
        load_master_key(missing)
    key = os.urandom(32)
    missing.write_bytes(key)
    missing.chmod(0o644)
    with pytest.raises(RecordingVaultUnavailable, match="readable by others") as refused:
        load_master_key(missing)
    assert key.hex() not in str(refused.value)
    missing.chmod(0o600)
    assert load_master_key(missing) == key
    import base64

    missing.write_bytes(base64.b64encode(key) + b"\n")
    assert load_master_key(missing) == key
