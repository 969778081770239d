"""The desk's tests reuse the staff pages' fixtures: a real gateway on loopback and a real SMTP
server receiving sign-in links (tests/staff/conftest.py)."""

from __future__ import annotations

from tests.staff.conftest import mailbox, staff_gateway

__all__ = ["mailbox", "staff_gateway"]
