"""`gateway audit verify`: prints the head as SEQ:MAC; `--expect-head` and `--witness` catch a
cut of the newest entries that the head row was rolled back over (one line, exit status 1)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.adapters.audit_witness import WITNESS_FILE, AuditWitnessJob, FileWitness
from gateway.adapters.keys import KeyRing
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.cli import main
from gateway.clock import FrozenClock
from gateway.domain.audit import SEGMENT

from .conftest import event

ROOT = Path(__file__).resolve().parents[2]
COUNT = 1500
KEEP = 1100


@pytest.fixture
def gateway_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with COUNT audit entries under the key ring the CLI will load; the witness
    file written once. Returns the database file."""
    database = tmp_path / "gateway.db"
    keys = tmp_path / "keys"
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(keys))
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    monkeypatch.delenv("GATEWAY_POLICY", raising=False)
    monkeypatch.chdir(ROOT)
    key = KeyRing.load_or_create(keys).audit_key()

    async def fill() -> None:
        db = Database(f"sqlite+aiosqlite:///{database}")
        await migrate(db.writer_engine)
        clock = FrozenClock(datetime(2025, 3, 1, 16, 0, tzinfo=UTC))
        writer = AuditedWriter(db, key, clock)
        await writer.start()
        try:

            def job(tx: WriteTx) -> None:
                for i in range(1, COUNT + 1):
                    tx.audit(event(i))

            await writer.write(job)
            await AuditWitnessJob(writer.heads, FileWitness(keys / WITNESS_FILE), clock).run_once()
        finally:
            await writer.stop()
            await db.dispose()

    asyncio.run(fill())
    return database


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def cut_and_roll_back(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DROP TRIGGER audit_seals_no_delete")
        db.execute("DELETE FROM audit_log WHERE seq > ?", (KEEP,))
        db.execute("DELETE FROM audit_seals WHERE segment > ?", (KEEP // SEGMENT,))
        (mac,) = db.execute("SELECT mac FROM audit_log WHERE seq = ?", (KEEP,)).fetchone()
        db.execute("UPDATE audit_head SET seq = ?, mac = ?", (KEEP, mac))


def test_verify_prints_the_head_and_expect_head_catches_a_covered_up_cut(
    gateway_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = verify(capsys)
    assert code == 0, out
    (head,) = re.findall(r"\bhead (\d+:[0-9a-f]{64})\b", out)
    assert head.startswith(f"{COUNT}:")
    assert verify(capsys, "--expect-head", head)[0] == 0

    cut_and_roll_back(gateway_env)
    assert verify(capsys)[0] == 0  # the shorter chain alone looks whole
    code, out, err = verify(capsys, "--expect-head", head)
    assert code == 1, (out, err)
    assert out.count("\n") == 1
    assert out.startswith(f"audit log TAMPERED: entries from {KEEP + 1} were cut")
    assert f"head was at entry {COUNT}" in out

    witness = gateway_env.parent / "keys" / WITNESS_FILE
    code, out, _ = verify(capsys, "--witness", str(witness))
    assert code == 1
    assert f"entries from {KEEP + 1} were cut" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expect-head", "1500"], "--expect-head '1500': a head is SEQ:MAC"),
        (["--witness", "/nonexistent/witness"], "--witness /nonexistent/witness: No such file"),
    ],
)
def test_a_bad_head_or_witness_is_one_clear_line(
    gateway_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = verify(capsys, *argv)
    assert code == 2
    assert err.startswith(f"gateway audit verify: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err
