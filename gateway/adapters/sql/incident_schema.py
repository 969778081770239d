"""Tables of the incident log (R14, R17), on the shared `metadata` (migration 0002).

`incidents` rows are never deleted and, once written, change only by being closed;
`incident_notes` are append-only. The database enforces both with triggers (see 0002).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from gateway.adapters.sql.schema import ID, metadata

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("session_id", String(ID), ForeignKey("sessions.id"), nullable=True),
    Column("reported_by_kind", String(16), nullable=False),  # participant | staff | system
    Column("reporter_identity", String(64), nullable=False),  # masked identity, staff id, gateway
    Column("reporter_participant_id", String(ID), ForeignKey("participants.id"), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("summary", Text, nullable=False),  # at most 2000 characters (domain)
    Column("what_gateway_did", Text, nullable=False),  # JSON list of action words
    Column("status", String(16), nullable=False),  # open | closed
    Column("created_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger, nullable=True),
    Column("closed_by", String(ID), ForeignKey("staff.id"), nullable=True),
    Index("ix_incidents_org_created", "org_id", "created_at"),
    Index("ix_incidents_session", "session_id"),
)

incident_notes = Table(
    "incident_notes",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("incident_id", String(ID), ForeignKey("incidents.id"), nullable=False),
    Column("author_staff_id", String(ID), ForeignKey("staff.id"), nullable=False),
    Column("text", Text, nullable=False),  # at most 4000 characters (domain)
    Column("created_at", BigInteger, nullable=False),
    Index("ix_incident_notes_incident", "incident_id"),
)
