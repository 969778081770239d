"""A gateway instance that is recording, for test_killed_recorder.py to kill with SIGKILL.

It builds the gateway's runtime from the environment (as `gateway serve` does), registers as
a live gateway process (heartbeat in `gateway_processes`, like every serving process), starts a
recording of the organisation named by its argument through `RecordingsService.start` and keeps
writing encrypted chunks into it (some on disk, a tail in memory), printing the recording id
once the first chunks are on disk. Then it waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from gateway.adapters.sql.processes import ProcessRegistry
from gateway.app import build_runtime
from gateway.domain.processes import GatewayProcess, LiveStateKind
from gateway.services.ports import Organisation
from gateway.settings import Settings
from tests.multinode.conftest import MARKER


async def main(org_id: str) -> None:
    settings = Settings.from_env()
    runtime = await build_runtime(settings)
    assert runtime.database is not None and runtime.recordings is not None
    me = GatewayProcess(runtime.process_id, LiveStateKind.REDIS, socket.gethostname(), os.getpid())
    registry = ProcessRegistry(runtime.database, me, settings.live_heartbeat_seconds)
    await registry.claim()
    org = Organisation(org_id, "Many Rooms Club", None)
    handle = await runtime.recordings.start(
        org, "staff:" + "t" * 32, "s" * 32, "lesson_review", [("child", "c" * 32)], ["r1"]
    )
    handle.writer.append(MARKER * 10_000)
    print(handle.entry.id, flush=True)
    while True:  # alive, and recording, until killed
        await registry.renew()
        handle.writer.append(MARKER * 100)
        await asyncio.sleep(settings.live_heartbeat_seconds / 3)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
