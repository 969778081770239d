"""The witness: the audit head recorded outside the database, only when it moved, by one
process at a time; and `verify` with the witness file catches what was cut after a line was
written."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from gateway.adapters.audit_witness import (
    SIGNATURE_HEADER,
    WITNESS_FILE,
    AuditWitnessJob,
    FileWitness,
    WebhookWitness,
    WitnessUnavailable,
    webhook_key,
    witnesses_for,
)
from gateway.adapters.leader import RedisLeaderLock, run_periodically
from gateway.adapters.live_redis import close_client, redis_client
from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.domain.audit import SEGMENT, ChainProblem, WitnessedHead, parse_head, parse_witness
from gateway.http.keys import SERVICES
from gateway.settings import Settings
from tests.plugins.gateway_server import MONDAY_10AM, ROOT

from .conftest import KEY, AuditDb, event


def recorded(path: Path) -> list[WitnessedHead]:
    return parse_witness(path.read_text().splitlines())


def job_for(db: AuditDb, path: Path) -> AuditWitnessJob:
    return AuditWitnessJob(db.writer.heads, FileWitness(path), db.clock)


async def test_the_head_is_recorded_only_when_it_moved(audit_db: AuditDb, tmp_path: Path) -> None:
    path = tmp_path / "witness" / WITNESS_FILE
    job = job_for(audit_db, path)
    assert not await job.run_once()  # an empty log: nothing to record yet
    assert not path.exists()
    await audit_db.fill(10)
    assert await job.run_once()
    assert not await job.run_once()  # unchanged
    await audit_db.writer.record(event(11))
    assert await job.run_once()
    heads = recorded(path)
    assert [h.seq for h in heads] == [10, 11]
    assert heads[-1].mac == (await audit_db.entry(11))[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    line = json.loads(path.read_text().splitlines()[0])
    assert line["at"] == audit_db.clock.now().isoformat()
    # A restarted process reads the last line back: the same head is not written twice.
    assert not await job_for(audit_db, path).run_once()
    assert len(recorded(path)) == 2


async def test_the_witness_file_catches_a_covered_up_cut(audit_db: AuditDb, tmp_path: Path) -> None:
    path = tmp_path / WITNESS_FILE
    job = job_for(audit_db, path)
    await audit_db.fill(2 * SEGMENT + 300)
    await job.run_once()
    keep = SEGMENT + 10
    _, mac = await audit_db.entry(keep)
    await audit_db.tamper(
        ("DELETE FROM audit_log WHERE seq > :k", {"k": keep}),
        "DELETE FROM audit_seals WHERE segment > 1",
        ("UPDATE audit_head SET seq = :k, mac = :m", {"k": keep, "m": mac}),
    )
    assert (await audit_db.verify()).intact
    report = await audit_db.verify(witnessed=recorded(path))
    assert report.problem == ChainProblem(keep + 1, "head_cut", other=2 * SEGMENT + 300)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[bytes, str]]]]:
    """A stand-in for the organisation's witness endpoint: keeps what it was sent."""
    received: list[tuple[bytes, str]] = []

    async def witness(request: web.Request) -> web.Response:
        body = await request.read()
        if request.query.get("fail") and not received:  # refuses its first delivery
            received.append((b"", "refused"))
            return web.Response(status=503)
        received.append((body, request.headers.get(SIGNATURE_HEADER, "")))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/witness", witness)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/witness", received
    finally:
        await runner.cleanup()


async def test_one_process_records_at_a_time(
    audit_db: AuditDb, receiver: tuple[str, list[tuple[bytes, str]]], redis_url: str, tmp_path: Path
) -> None:
    # Two processes, each with its own lease token and its own webhook witness: without the
    # lease each would send every head, so heads would arrive twice.
    url, received = receiver
    clients = [redis_client(redis_url) for _ in range(2)]
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(
            run_periodically(
                RedisLeaderLock(client, prefix="witness-test"),
                "audit.witness",
                0.02,
                AuditWitnessJob(
                    audit_db.writer.heads, WebhookWitness(url, webhook_key(KEY)), audit_db.clock
                ),
                stop,
                ttl_seconds=30,  # no handover mid-test: a lease is not a mutex past its ttl
            )
        )
        for client in clients
    ]
    try:
        for i in range(1, 16):
            await audit_db.writer.record(event(i))
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*runs)
        for client in clients:
            await close_client(client)
    seqs = [parse_head(json.loads(body)["heads"][0]).seq for body, _ in received]
    assert len(seqs) >= 5, seqs
    assert seqs == sorted(set(seqs)), seqs  # each head once, in order
    assert seqs[-1] == 15


async def test_a_webhook_receives_signed_heads(
    audit_db: AuditDb, receiver: tuple[str, list[tuple[bytes, str]]], tmp_path: Path
) -> None:
    url, received = receiver
    witness = WebhookWitness(url, webhook_key(KEY))
    job = AuditWitnessJob(audit_db.writer.heads, witness, audit_db.clock)
    await audit_db.fill(3)
    assert await job.run_once()
    assert not await job.run_once()
    ((body, signature),) = received
    assert json.loads(body) == {
        "heads": [f"3:{(await audit_db.entry(3))[1].hex()}"],  # every chain's: one here
        "at": audit_db.clock.now().isoformat(),
    }
    expected = hmac.new(webhook_key(KEY), body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert webhook_key(KEY) != KEY  # the receiver cannot forge audit MACs with it


async def test_a_failed_webhook_is_tried_again(audit_db: AuditDb, tmp_path: Path) -> None:
    job = AuditWitnessJob(
        audit_db.writer.heads,
        WebhookWitness("http://127.0.0.1:9/witness", webhook_key(KEY)),
        audit_db.clock,
    )
    await audit_db.fill(2)
    with pytest.raises(WitnessUnavailable, match="unreachable") as failed:
        await job.run_once()  # nothing listens: the round fails, the head is not marked
    assert "127.0.0.1" not in str(failed.value)  # a URL may carry a token: never in a message


def test_the_file_is_always_a_witness_and_a_url_adds_a_webhook(tmp_path: Path) -> None:
    def kinds(target: str) -> dict[str, tuple[type, object]]:
        return {
            name: (type(w), getattr(w, "path", None) or getattr(w, "url", None))
            for name, w in witnesses_for(target, tmp_path, KEY).items()
        }

    default = tmp_path / WITNESS_FILE
    assert kinds("") == {"audit.witness.file": (FileWitness, default)}
    assert kinds("/srv/witness.jsonl") == {
        "audit.witness.file": (FileWitness, Path("/srv/witness.jsonl"))
    }
    assert kinds("https://witness.example/heads") == {
        "audit.witness.file": (FileWitness, default),
        "audit.witness.webhook": (WebhookWitness, "https://witness.example/heads"),
    }


async def test_a_running_gateway_records_its_head(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        policy_path=ROOT / "policies" / "default.toml",
        keys_dir=tmp_path / "keys",
    )
    path = tmp_path / "keys" / WITNESS_FILE

    async def running(work: Callable[[web.Application], Awaitable[None]]) -> None:
        runner = web.AppRunner(build_app(settings, FrozenClock(MONDAY_10AM)), access_log=None)
        await runner.setup()
        try:
            await work(runner.app)
        finally:
            await runner.cleanup()

    async def create_organisation(app: web.Application) -> None:
        await app[SERVICES].organisations.create("Riverside Tutors")  # audited

    async def wait_for_witness(app: web.Application) -> None:
        head = await app[SERVICES].store.verify_audit()
        for _ in range(100):
            if path.exists() and recorded(path)[-1:] == [
                WitnessedHead(head.head_seq, head.head_mac)
            ]:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the gateway did not record its head")

    await running(create_organisation)  # its last head may not be recorded before it stops
    await running(wait_for_witness)  # the next start records it at once
    assert len(recorded(path)) == 1


async def test_a_refused_delivery_is_sent_again_next_round(
    audit_db: AuditDb, receiver: tuple[str, list[tuple[bytes, str]]], tmp_path: Path
) -> None:
    url, received = receiver
    job = AuditWitnessJob(
        audit_db.writer.heads, WebhookWitness(f"{url}?fail=1", webhook_key(KEY)), audit_db.clock
    )
    await audit_db.fill(4)
    with pytest.raises(WitnessUnavailable, match="answered 503"):
        await job.run_once()
    assert await job.run_once()
    assert [json.loads(body)["heads"] for body, _ in received[1:]] == [
        [f"4:{(await audit_db.entry(4))[1].hex()}"]
    ]
