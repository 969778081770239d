"""The desk's tests reuse the staff pages' fixtures: a real gateway on loopback and a real SMTP
server receiving sign-in links (tests/staff/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, mailbox, serve_gateway

__all__ = ["mailbox", "staff_gateway"]


@pytest.fixture
async def staff_gateway(
    database_url: str, tmp_path: Path, mailbox: Mailbox, schema_at_head: Callable[[str], None]
) -> AsyncIterator[Gateway]:
    """The staff pages' gateway with the live service's reconciliation once an hour: the desk's
    stories are written on a frozen clock moved on by minutes, and a round meanwhile would add
    what it sees (seats whose media never connected) to them, or not, depending on how fast the
    machine runs the test."""
    schema_at_head(database_url)
    async with serve_gateway(database_url, tmp_path, mailbox.port, reconcile_seconds=3600) as gw:
        yield gw
