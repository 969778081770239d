"""Run by test_killed.py in a subprocess: a real publisher in a relay, recorded into a vault
directory; prints the recording id once several encrypted chunks are on disk, then records on
until it is killed (SIGKILL). Arguments: vault directory, data key (hex)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from gateway.adapters.recording_vault import LocalRecordingStorage, RecordingWriter
from gateway.media.recorder import RelayRecorder
from gateway.media.relay import EmbeddedRelay
from tests.media._peers import join
from tests.recorder.conftest import FULL, ROOM, publisher

ON_DISK = 200_000  # bytes of ciphertext before saying so (three chunks and more)


async def main(directory: str, key_hex: str) -> None:
    relay = EmbeddedRelay()
    await relay.open_room(ROOM)
    client, _ = publisher("alice", noise=True)
    await join(relay, ROOM, client, FULL)
    storage = LocalRecordingStorage(Path(directory))
    writer = RecordingWriter(storage, os.urandom(16).hex(), bytes.fromhex(key_hex))
    recorder = RelayRecorder(relay)
    await recorder.start(ROOM, "alice", writer, audio_only=False, on_failure=print)
    while (storage.size(writer.recording_id) or 0) < ON_DISK:
        await asyncio.sleep(0.05)
    print(writer.recording_id, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
