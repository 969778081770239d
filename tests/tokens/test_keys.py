"""The key ring: created private, persisted, rotated, never shown."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from gateway.adapters.keys import KEY_FILE, KeyRing, KeyRingError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def all_secrets(ring: KeyRing) -> list[bytes]:
    values = [ring.audit_key(), ring.media_key()]
    values += [v for kid in ring.signing_kids() if (v := ring.verification_key(kid)) is not None]
    return values


def test_created_with_private_modes(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "keys"
    old_umask = os.umask(0o022)
    try:
        ring = KeyRing.load_or_create(directory)
    finally:
        os.umask(old_umask)

    assert mode(directory) == 0o700
    assert mode(directory / KEY_FILE) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [KEY_FILE]  # no temp files left
    kid, secret = ring.signing_key()
    assert len(secret) == 32
    assert len(ring.audit_key()) == 32
    assert len(ring.media_key()) == 32
    assert len({secret, ring.audit_key(), ring.media_key()}) == 3

    document = json.loads((directory / KEY_FILE).read_text())
    assert document["version"] == 1
    assert document["signing"] == [{"kid": kid, "key": base64.b64encode(secret).decode()}]


def test_load_returns_the_same_keys(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path / "keys")
    second = KeyRing.load_or_create(tmp_path / "keys")
    assert second.signing_key() == first.signing_key()
    assert second.audit_key() == first.audit_key()
    assert second.media_key() == first.media_key()


def test_existing_directory_is_used(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    assert mode(tmp_path / KEY_FILE) == 0o600
    assert ring.signing_kids()


def test_rotation_persists_and_old_keys_verify(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    old_kid, old_secret = ring.signing_key()

    new_kid = ring.rotate_signing_key()

    assert ring.signing_key()[0] == new_kid
    assert ring.verification_key(old_kid) == old_secret
    reloaded = KeyRing.load_or_create(tmp_path / "keys")
    assert reloaded.signing_kids() == (old_kid, new_kid)
    assert reloaded.signing_key() == ring.signing_key()
    assert mode(tmp_path / "keys" / KEY_FILE) == 0o600

    ring.remove_signing_key(old_kid)
    assert ring.verification_key(old_kid) is None
    reloaded.reload()
    assert reloaded.signing_kids() == (new_kid,)


def test_newest_key_cannot_be_removed(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    with pytest.raises(KeyRingError, match="newest"):
        ring.remove_signing_key(ring.signing_key()[0])
    with pytest.raises(KeyRingError, match="no such"):
        ring.remove_signing_key("k-nope")


def test_verification_key_only_for_known_kids() -> None:
    ring = KeyRing.generate()
    kid, secret = ring.signing_key()
    assert ring.verification_key(kid) == secret
    for other in ("", "k", kid + "x", kid[:-1], kid.upper(), "audit", "media", "../keys.json"):
        assert ring.verification_key(other) is None


def test_repr_and_str_hide_secrets(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    ring.rotate_signing_key()
    for text in (repr(ring), str(ring), f"{ring}", f"{ring!r}"):
        assert "hidden" in text
        for secret in all_secrets(ring):
            assert secret.hex() not in text
            assert base64.b64encode(secret).decode() not in text
            assert repr(secret) not in text


def test_not_picklable() -> None:
    with pytest.raises(TypeError, match="picklable"):
        pickle.dumps(KeyRing.generate())


def test_world_readable_file_refused(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(KeyRingError, match="0600"):
        KeyRing.load_or_create(tmp_path)


def test_malformed_file_refused_without_echoing_it(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    path = tmp_path / KEY_FILE
    document = json.loads(path.read_text())
    audit = document["audit"]

    document["media"] = base64.b64encode(b"short").decode()
    path.write_text(json.dumps(document))
    with pytest.raises(KeyRingError, match="media key must be 32 bytes") as caught:
        KeyRing.load_or_create(tmp_path)
    assert audit not in str(caught.value)

    path.write_text('{"version": 1, "signing": [], "audit": "' + audit + '"}')
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load_or_create(tmp_path)
    assert audit not in str(caught.value)

    path.write_text("not json " + audit)
    with pytest.raises(KeyRingError, match="malformed") as caught:
        KeyRing.load_or_create(tmp_path)
    assert audit not in str(caught.value)
    assert ring.audit_key()  # the ring in memory is untouched


def test_generated_ring_has_no_directory() -> None:
    ring = KeyRing.generate()
    ring.rotate_signing_key()  # in memory only
    assert len(ring.signing_kids()) == 2
    with pytest.raises(KeyRingError, match="no directory"):
        ring.reload()


def test_lost_creation_race_uses_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = KeyRing.load_or_create(tmp_path / "a")
    (tmp_path / "b").mkdir(mode=0o700)
    real_exists = Path.exists

    def racing_exists(self: Path) -> bool:
        if self.name == KEY_FILE and self.parent.name == "b":
            if not real_exists(self):
                # someone else writes the file between our check and our link
                os.link(tmp_path / "a" / KEY_FILE, self)
            return False
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", racing_exists)
    loser = KeyRing.load_or_create(tmp_path / "b")
    assert loser.signing_key() == winner.signing_key()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [KEY_FILE]
