"""The gateway's secrets, kept in one file: `<directory>/keys.json` (0600, directory 0700).

    signing  invite-signing keys (HS256, 32 random bytes each, with a key id). The newest signs;
             older ones still verify until removed, so a rotation never breaks issued invites.
    audit    the audit MAC key (32 bytes)
    media    the media-credential signing key (32 bytes)

The file is JSON with base64 values:
    {"version": 1, "signing": [{"kid": "...", "key": "..."}, ...], "audit": "...", "media": "..."}

`load_or_create` makes the directory and the file when missing; creation is race-free between
processes (the file is linked into place only if nobody got there first). A file readable by
anyone but its owner is refused. Rotation and removal rewrite the file atomically; other running
instances see the change after `reload()` (or a restart), so rotate, let every instance reload,
and only remove an old key once no valid invite can still carry it.

Secrets never appear in repr, str or logs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from gateway.adapters.private_files import FILE_MODE, private_directory

__all__ = ["KEY_BYTES", "KEY_FILE", "KeyRing", "KeyRingError"]

KEY_FILE = "keys.json"
KEY_BYTES = 32
_VERSION = 1


class KeyRingError(Exception):
    """The key file is missing a part, malformed, or too widely readable."""


@dataclass(frozen=True, slots=True, repr=False)
class _SigningKey:
    kid: str
    secret: bytes

    def __repr__(self) -> str:
        return f"_SigningKey(kid={self.kid!r}, secret=<hidden>)"


class KeyRing:
    """Named secrets loaded from (and persisted to) one directory."""

    __slots__ = ("_audit", "_directory", "_media", "_signing")

    def __init__(
        self,
        signing: list[tuple[str, bytes]],
        audit: bytes,
        media: bytes,
        directory: Path | None = None,
    ) -> None:
        if not signing:
            raise KeyRingError("a key ring needs at least one signing key")
        kids = [kid for kid, _ in signing]
        if len(set(kids)) != len(kids):
            raise KeyRingError("signing key ids must be unique")
        for kid, secret in signing:
            _check_kid(kid)
            _check_secret(secret, "signing")
        _check_secret(audit, "audit")
        _check_secret(media, "media")
        self._signing = [_SigningKey(kid, secret) for kid, secret in signing]
        self._audit = audit
        self._media = media
        self._directory = directory

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def generate(cls, directory: Path | None = None) -> KeyRing:
        """A fresh ring in memory (persisted only by `load_or_create`/`rotate_signing_key`)."""
        return cls(
            signing=[(_new_kid(set()), secrets.token_bytes(KEY_BYTES))],
            audit=secrets.token_bytes(KEY_BYTES),
            media=secrets.token_bytes(KEY_BYTES),
            directory=directory,
        )

    @classmethod
    def load_or_create(cls, directory: Path) -> KeyRing:
        """Load `directory/keys.json`, creating the directory (0700, and any missing parents)
        and the file (0600) if missing."""
        directory = Path(directory)
        private_directory(directory)  # it and every folder made for it 0700, whatever the umask
        path = directory / KEY_FILE
        if not path.exists():
            ring = cls.generate(directory)
            if ring._write(create_only=True):
                return ring
            # another process created it first: use theirs
        return cls._read(directory)

    def reload(self) -> None:
        """Re-read the key file (to see a rotation made by another instance)."""
        if self._directory is None:
            raise KeyRingError("this key ring has no directory")
        fresh = self._read(self._directory)
        self._signing, self._audit, self._media = fresh._signing, fresh._audit, fresh._media

    # --- use ---------------------------------------------------------------------------------

    def signing_key(self) -> tuple[str, bytes]:
        """The newest signing key: (kid, secret)."""
        newest = self._signing[-1]
        return newest.kid, newest.secret

    def verification_key(self, kid: str) -> bytes | None:
        """The secret for a known kid, else None. Never falls back to any other key."""
        for key in self._signing:
            if secrets.compare_digest(key.kid.encode(), kid.encode()):
                return key.secret
        return None

    def signing_kids(self) -> tuple[str, ...]:
        """Known signing key ids, oldest first (safe to show: ids are not secrets)."""
        return tuple(key.kid for key in self._signing)

    def audit_key(self) -> bytes:
        return self._audit

    def media_key(self) -> bytes:
        return self._media

    # --- rotation ----------------------------------------------------------------------------

    def rotate_signing_key(self) -> str:
        """Add a new signing key (it signs from now on), persist, and return its kid."""
        kid = _new_kid(set(self.signing_kids()))
        self._signing = [*self._signing, _SigningKey(kid, secrets.token_bytes(KEY_BYTES))]
        self._persist()
        return kid

    def remove_signing_key(self, kid: str) -> None:
        """Forget an old signing key: invites it signed stop verifying. The newest stays."""
        if kid not in self.signing_kids():
            raise KeyRingError("no such signing key")
        if kid == self._signing[-1].kid:
            raise KeyRingError("the newest signing key cannot be removed; rotate first")
        self._signing = [key for key in self._signing if key.kid != kid]
        self._persist()

    def __repr__(self) -> str:
        return f"KeyRing(signing_kids={list(self.signing_kids())!r}, secrets=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KeyRing is not picklable (it would copy its secrets)")

    # --- file --------------------------------------------------------------------------------

    def _persist(self) -> None:
        if self._directory is not None:
            self._write(create_only=False)

    def _document(self) -> bytes:
        document = {
            "version": _VERSION,
            "signing": [{"kid": key.kid, "key": _b64(key.secret)} for key in self._signing],
            "audit": _b64(self._audit),
            "media": _b64(self._media),
        }
        return json.dumps(document, indent=2).encode() + b"\n"

    def _write(self, *, create_only: bool) -> bool:
        """Write the file atomically. With create_only, False if it already exists."""
        assert self._directory is not None
        path = self._directory / KEY_FILE
        temp = self._directory / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            try:
                os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask took off
                os.write(fd, self._document())
                os.fsync(fd)
            finally:
                os.close(fd)
            if create_only:
                try:
                    os.link(temp, path)  # fails if someone else created it meanwhile
                except FileExistsError:
                    return False
            else:
                os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        _fsync_directory(self._directory)
        return True

    @classmethod
    def _read(cls, directory: Path) -> KeyRing:
        path = directory / KEY_FILE
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as error:
            raise KeyRingError(f"key file {path} is missing") from error
        try:
            mode = os.fstat(fd).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyRingError(
                    f"key file {path} is accessible to others (mode {stat.S_IMODE(mode):o}); "
                    "make it 0600"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read()
        finally:
            os.close(fd)
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("version") != _VERSION:
                raise KeyRingError(f"key file {path} has an unknown format")
            entries = document["signing"]
            if not isinstance(entries, list):
                raise KeyRingError(f"key file {path}: 'signing' must be a list")
            signing = [(_str(entry["kid"]), _unb64(entry["key"])) for entry in entries]
            return cls(
                signing=signing,
                audit=_unb64(document["audit"]),
                media=_unb64(document["media"]),
                directory=directory,
            )
        except (ValueError, KeyError, TypeError) as error:
            # never include the file's content: it is all secrets
            raise KeyRingError(f"key file {path} is malformed ({type(error).__name__})") from None


def _new_kid(taken: set[str]) -> str:
    while True:
        kid = "k" + secrets.token_hex(8)
        if kid not in taken:
            return kid


def _check_kid(kid: str) -> None:
    if not isinstance(kid, str) or not 1 <= len(kid) <= 64 or not kid.isascii():
        raise KeyRingError("a key id must be 1-64 ASCII characters")


def _check_secret(secret: bytes, name: str) -> None:
    if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
        raise KeyRingError(f"the {name} key must be {KEY_BYTES} bytes")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("key is not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("key is not base64") from None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("kid is not a string")
    return value


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
