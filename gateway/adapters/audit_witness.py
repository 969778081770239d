"""Keeping the audit chain's head outside the database (R15).

Someone who can write the database can cut the newest audit entries, their seals and roll the
head row back: what is left is a shorter chain that verifies on its own. So the gateway
periodically records its heads (every chain's: place and MAC of its newest entry) somewhere
that person cannot rewrite, and `gateway audit verify --witness FILE` checks that every head
recorded there is still in its chain. A record names every chain's head, so a whole chain
deleted (entries, seals and head row) is noticed as well as a cut of one.

    FileWitness     an append-only file of JSON lines {"heads": ["SEQ:MAC", "2/SEQ:MAC", ...],
                    "at"} (0600, created with its folder 0700). Always; by default under the
                    keys folder. Lines {"seq", "mac", "at"} written before chains still read.
    WebhookWitness  when configured, also a POST of the same JSON to a URL the organisation
                    runs (another machine, another administrator), signed:
                    X-Gateway-Signature: sha256=<hex HMAC of the body> with a key derived
                    from the audit key (`webhook_key`).
    AuditWitnessJob reads the heads and hands them to the witness only when one moved; run it with
                    `leader.run_periodically` under a lease, so one process writes at a time.

A witness records what the database says, verified or not: a head that was already forged
when recorded fails `verify --witness` later, which is the alarm wanted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import aiohttp

from gateway.clock import Clock
from gateway.domain.audit import WitnessedHead, format_head, parse_witness_line

__all__ = [
    "WITNESS_FILE",
    "WITNESS_SECONDS",
    "AuditWitness",
    "AuditWitnessJob",
    "FileWitness",
    "WebhookWitness",
    "WitnessUnavailable",
    "webhook_key",
    "witnesses_for",
]

WITNESS_SECONDS = 10.0  # how often the head is looked at (it is written only when it moved)
WITNESS_FILE = "audit-witness.jsonl"  # default, in the keys folder
WEBHOOK_TIMEOUT_SECONDS = 5.0
SIGNATURE_HEADER = "X-Gateway-Signature"
_WEBHOOK_KEY_LABEL = b"sgw-audit-witness-webhook"


class WitnessUnavailable(Exception):
    """The head could not be recorded (the job tries again next round). The message never
    carries the webhook's URL, which may hold a token."""


Heads = tuple[WitnessedHead, ...]


class AuditWitness(Protocol):
    async def last(self) -> Heads:
        """The newest heads this witness holds (every chain's), if it can tell (else ())."""
        ...

    async def record(self, heads: Heads, at: datetime) -> None:
        """Record every chain's head; raises if it could not be (retried next round)."""
        ...


def witness_document(heads: Heads, at: datetime) -> bytes:
    document = {
        "heads": [format_head(head.seq, head.mac, head.chain) for head in heads],
        "at": at.isoformat(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


class FileWitness:
    """Appends one JSON line per head; never rewrites the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    async def last(self) -> Heads:
        return await asyncio.to_thread(self._last)

    def _last(self) -> Heads:
        try:
            with self.path.open("rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
                tail = handle.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ()
        for line in reversed(tail):
            try:
                heads = parse_witness_line(line.strip())
            except (ValueError, KeyError, TypeError):
                continue  # a partial first line of the tail, or a torn write
            if heads:
                return tuple(heads)
        return ()

    async def record(self, heads: Heads, at: datetime) -> None:
        await asyncio.to_thread(self._append, witness_document(heads, at) + b"\n")

    def _append(self, line: bytes) -> None:
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the creation mode is filtered by the umask
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def webhook_key(audit_key: bytes) -> bytes:
    """The webhook's signing key: derived from the audit key, so the receiver can check the
    sender without being able to forge audit MACs."""
    return hmac.digest(audit_key, _WEBHOOK_KEY_LABEL, "sha256")


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookWitness:
    """POSTs each head to `url`; any answer but 2xx is a failure (tried again next round)."""

    def __init__(self, url: str, key: bytes) -> None:
        self.url = url
        self._key = key

    async def last(self) -> Heads:
        return ()  # the receiver keeps them; after a restart the heads are sent once more

    async def record(self, heads: Heads, at: datetime) -> None:
        body = witness_document(heads, at)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._key, body)}
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.url, data=body, headers=headers, allow_redirects=False) as answer,
            ):
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise WitnessUnavailable(
                f"witness webhook unreachable ({type(error).__name__})"
            ) from None
        if not 200 <= status < 300:
            raise WitnessUnavailable(f"witness webhook answered {status}")


def witnesses_for(
    target: str | None, default_folder: Path, audit_key: bytes
) -> dict[str, AuditWitness]:
    """The witnesses a setting names, by job name. The file always: `target` if it is a path,
    else the default file in `default_folder`; and a webhook too when `target` is an http(s)
    URL. Each gets its own job, so one that fails does not hold the other back."""
    if target is not None and target.startswith(("https://", "http://")):
        return {
            "audit.witness.file": FileWitness(default_folder / WITNESS_FILE),
            "audit.witness.webhook": WebhookWitness(target, webhook_key(audit_key)),
        }
    return {
        "audit.witness.file": FileWitness(Path(target) if target else default_folder / WITNESS_FILE)
    }


class AuditWitnessJob:
    """One round: read every chain's head; record them if any moved since last recorded."""

    def __init__(
        self,
        read_heads: Callable[[], Awaitable[Heads]],
        witness: AuditWitness,
        clock: Clock,
    ) -> None:
        self._read_heads = read_heads
        self._witness = witness
        self._clock = clock
        self._last: Heads = ()

    async def __call__(self) -> None:
        await self.run_once()

    async def run_once(self) -> bool:
        """True when a head was recorded."""
        # A file says what was last written, also by another process (the lease moves); a
        # webhook cannot, and then this process's memory is all there is.
        last = await self._witness.last() or self._last
        heads = tuple(await self._read_heads())
        if heads == last or all(head.seq == 0 for head in heads):
            return False
        await self._witness.record(heads, self._clock.now())
        self._last = heads
        return True
