"""Benchmark: notification delivery from the outbox to a local SMTP server (aiosmtpd) and a
local signed-webhook receiver (aiohttp), on SQLite, in one run.

1. Delivery rate: BENCH_OUTBOX_BURST concerns (each one e-mail to the DSL and one webhook) are
   queued, then the worker delivers until the outbox is empty; messages per second.
2. Time from a concern to the DSL's inbox: BENCH_OUTBOX_STEADY concerns queued at
   BENCH_OUTBOX_RATE per second while the worker runs as the gateway runs it (a round every
   OUTBOX_SECONDS under the leader lease); from the enqueue's commit to the SMTP server's
   acceptance, p50/p99.

    .venv/bin/python scripts/bench_outbox.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from gateway.adapters.leader import InProcessLeaderLock, run_periodically
from gateway.app import OUTBOX_SECONDS, build_runtime
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import Channels, EmailChannel, WebhookChannel, webhook_secret_bytes
from gateway.settings import Settings
from tests.notifications.receivers import SmtpServer, WebhookReceiver
from tests.plugins.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
BURST = int(os.environ.get("BENCH_OUTBOX_BURST", "1000"))
STEADY = int(os.environ.get("BENCH_OUTBOX_STEADY", "200"))
RATE = float(os.environ.get("BENCH_OUTBOX_RATE", "20"))
SECRET = "whsec_" + "YmVuY2gtb3V0Ym94LXdlYmhvb2stc2VjcmV0LTAwMDA="
DSL = "dsl@example.org"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    smtp = SmtpServer(free_port())
    smtp.start()
    receiver = WebhookReceiver(webhook_secret_bytes(SECRET))
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/gateway.db",
            policy_path=ROOT / "policies" / "default.toml",
            keys_dir=Path(tmp) / "keys",
        )
        runtime = await build_runtime(settings)
        try:
            notifications = runtime.notifications
            org, _ = await runtime.services.organisations.create("Bench Club")
            await notifications.set_channels(
                org,
                Channels(
                    email=EmailChannel("127.0.0.1", smtp.port, "none", "gateway@example.org", DSL),
                    webhook=WebhookChannel(
                        f"http://127.0.0.1:{hook_port}/hooks/safeguarding", SECRET
                    ),
                ),
                actor="bench",
            )
            event = AuditEvent("incident.opened", "bench", org.id)

            async def concern(n: int) -> dict[str, float]:
                messages = notifications.concern_raised(org.id, "a" * 32, f"{n:032x}", "Sam R.")
                await notifications.enqueue(messages, [event])
                at = time.monotonic()
                return {m.id: at for m in messages}

            # 1. delivery rate
            await asyncio.gather(*(concern(n) for n in range(BURST)))
            started = time.perf_counter()
            delivered = 0
            while delivered < 2 * BURST:
                delivered += await notifications.deliver_due()
            elapsed = time.perf_counter() - started
            assert len(smtp.received) == BURST and len(receiver.accepted) == BURST
            assert receiver.duplicates == 0 and receiver.bad_signatures == 0
            print(
                f"burst: {BURST} concerns -> {BURST} e-mails + {BURST} webhooks in "
                f"{elapsed:.2f} s: {2 * BURST / elapsed:.0f} messages/s"
            )

            # 2. time from a concern to the DSL's inbox, worker running as in the gateway
            smtp.received.clear()
            stop = asyncio.Event()

            async def deliver() -> None:
                await notifications.deliver_due()

            worker = asyncio.create_task(
                run_periodically(
                    InProcessLeaderLock(), "notifications.deliver", OUTBOX_SECONDS, deliver, stop
                )
            )
            queued: dict[str, float] = {}
            for n in range(STEADY):
                queued.update(await concern(BURST + n))
                await asyncio.sleep(1 / RATE)
            for _ in range(600):  # at most 30 s for the last ones to arrive
                if len(smtp.received) >= STEADY:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await worker
            latencies = []
            for mail in smtp.received:
                message_id = mail.mail["Message-ID"].strip("<>").split("@")[0]
                latencies.append(mail.at - queued[message_id])
            assert len(latencies) == STEADY, f"{len(latencies)} of {STEADY} arrived"
            print(
                f"steady: {STEADY} concerns at {RATE:.0f}/s, a worker round every "
                f"{OUTBOX_SECONDS:.1f} s: concern -> DSL's inbox "
                f"p50 {_percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms, "
                f"mean {statistics.mean(latencies) * 1000:.0f} ms"
            )
        finally:
            await runtime.close()
            await runner.cleanup()
            smtp.stop()


if __name__ == "__main__":
    asyncio.run(main())
