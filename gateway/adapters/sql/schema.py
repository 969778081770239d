"""Tables. Durable truth lives here; the schema itself is created by migrations only.

Timestamps are UTC microseconds since the epoch (BigInteger): identical on SQLite and
PostgreSQL, cheap to compare and to hash into the audit chain.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = 32  # uuid4 hex

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("policy_path", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

staff = Table(
    "staff",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("roles", String(100), nullable=False),  # comma-separated StaffRole values
    Column("vetting_kind", String(64), nullable=True),
    Column("vetting_checked_on", Date, nullable=True),
    Column("vetting_expires_on", Date, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("org_id", "email", name="uq_staff_org_email"),
)

children = Table(
    "children",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

guardians = Table(
    "guardians",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("contact", String(320), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

child_guardians = Table(
    "child_guardians",
    metadata,
    Column("child_id", String(ID), ForeignKey("children.id"), primary_key=True),
    Column("guardian_id", String(ID), ForeignKey("guardians.id"), primary_key=True),
)

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(ID), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("given_by_kind", String(16), nullable=False),
    Column("given_by_id", String(ID), nullable=False),
    Column("evidence_method", String(32), nullable=True),
    Column("evidence_reference", String(200), nullable=True),
    Column("evidence_date", Date, nullable=True),
    Column("recorded_at", BigInteger, nullable=False),
    Index("ix_consent_subject", "org_id", "subject_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("host_staff_id", String(ID), ForeignKey("staff.id"), nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("recording_purpose", String(64), nullable=True),
    Column("password_hash", Text, nullable=True),
    Column("out_of_hours_approved_by", String(ID), nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

participants = Table(
    "participants",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("session_id", String(ID), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("person_kind", String(16), nullable=False),
    Column("person_id", String(ID), nullable=False),
    Column("role", String(16), nullable=False),
    Column("masked_identity", String(64), nullable=False, unique=True),
    Column("display_name", String(120), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Durable exits (migration 0004): removed for good, and deliberate departures so far.
    Column("removed_at", BigInteger, nullable=True),
    Column("departures", Integer, nullable=False, server_default="0"),
    UniqueConstraint("session_id", "person_kind", "person_id", name="uq_participant_person"),
)

invites = Table(
    "invites",
    metadata,
    Column("id", String(ID), primary_key=True),  # the token's jti
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("session_id", String(ID), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("participant_id", String(ID), ForeignKey("participants.id"), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("device_hash", String(64), nullable=True),
    Column("redeemed_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

# The audit log: append-only. `entry` holds the canonical bytes the MAC chain covers (see
# gateway.domain.audit); the other columns are an index for filtering, and what the API shows is
# always decoded from `entry`.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("org_id", String(ID), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("session_id", String(ID), nullable=True),
    Column("person_id", String(ID), nullable=True),
    Column("entry", LargeBinary, nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
    # Its chain and place in it (migration 0015; see gateway.domain.audit, "Chains"). NOT NULL
    # on PostgreSQL; on SQLite `link` stays nullable in the file (SQLite cannot change that
    # without rebuilding the table), and verify reports a row without one.
    Column("chain", Integer, nullable=False, server_default="1"),
    Column("link", BigInteger, nullable=False),
    Index("ix_audit_org_at", "org_id", "at"),
    Index("ix_audit_session", "session_id"),
    Index("ix_audit_person", "person_id"),
    Index("ix_audit_chain_link", "chain", "link", unique=True),
)

# Seals over whole segments of a chain's entries, for bulk verification.
audit_seals = Table(
    "audit_seals",
    metadata,
    Column("chain", Integer, primary_key=True, autoincrement=False, server_default="1"),
    Column("segment", BigInteger, primary_key=True, autoincrement=False),
    Column("mac", LargeBinary(32), nullable=False),
)

# One row per chain (id: the chain's number): its newest entry's link (`seq`) and MAC, updated
# in the same transaction as the entries. A writer locks the row of the chain it appends to;
# verify uses them to detect a cut tail.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
)

# Notifications (DESIGN §3): the outbox, written in the same transaction as the event that
# causes each message, and delivered by the worker (gateway/services/notifications.py). A row
# holds no address: recipients are resolved from the organisation's channels at delivery.
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(ID), primary_key=True),  # the idempotency key (webhook-id)
    Column("notification_id", String(ID), nullable=False),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("session_id", String(ID), nullable=True),
    Column("incident_id", String(ID), nullable=True),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_token", String(ID), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_error", String(32), nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    Column("escalated_at", BigInteger, nullable=True),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_org_state", "org_id", "state", "created_at"),
)

# An organisation's notification channels, one row per channel kind. `settings` is JSON without
# secrets; `secret` (SMTP password, webhook secret) is never returned by the API.
notification_channels = Table(
    "notification_channels",
    metadata,
    Column("org_id", String(ID), ForeignKey("organisations.id"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("settings", Text, nullable=False),
    Column("secret", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

# Staff sign-in (migration 0008). Only SHA-256 hashes of session ids, link tokens and browser
# cookies are stored: a copy of the database signs nobody in.
staff_passwords = Table(
    "staff_passwords",
    metadata,
    Column("staff_id", String(ID), ForeignKey("staff.id"), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id PHC string
    Column("set_at", BigInteger, nullable=False),
)

staff_signin_links = Table(
    "staff_signin_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", String(ID), ForeignKey("staff.id"), nullable=False, index=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("browser_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("staff_id", String(ID), ForeignKey("staff.id"), nullable=False, index=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("method", String(16), nullable=False),  # link | password
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

# Recordings (issue 9): the catalogue. File names are the random recording id; people are
# linked by id (views mask names). Times are UTC microseconds like everywhere else.
recordings = Table(
    "recordings",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("session_id", String(ID), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("consent_hash", String(64), nullable=False),  # sha256 of the consent snapshot
    Column("consent_record_ids", Text, nullable=False),  # JSON list, the snapshot's records
    Column("state", String(16), nullable=False),  # recording|complete|incomplete|destroyed
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("retain_until", BigInteger, nullable=False),
    Column("held", Integer, nullable=False),  # 0/1: a safeguarding hold (R14)
    Column("hold_reason", Text, nullable=True),
    Column("hold_by", String(ID), nullable=True),
    Column("hold_at", BigInteger, nullable=True),
    # Destruction asked for (consent withdrawn, a request) and whether its first step (the key)
    # has been taken: a run killed half-way is finished by the next one.
    Column("destruction_requested", String(32), nullable=True),
    Column("destruction_requested_by", String(64), nullable=True),
    Column("destruction_started", Integer, nullable=False),
    # The gateway process writing it (gateway_processes): recovery seals only recordings
    # whose writer is no longer alive, never one another process is still writing.
    Column("writer_process", String(64), nullable=True),
    Index("ix_recordings_org_session", "org_id", "session_id"),
    Index("ix_recordings_due", "state", "retain_until"),
    Index("ix_recordings_org_started", "org_id", "started_at"),  # the desk's list (0012)
    # Destructions started or asked for, found without scanning the catalogue (0012).
    Index("ix_recordings_destruction", "state", "destruction_started", "destruction_requested"),
)

recording_participants = Table(
    "recording_participants",
    metadata,
    Column("recording_id", String(ID), ForeignKey("recordings.id"), primary_key=True),
    Column("person_id", String(ID), primary_key=True),
    Column("org_id", String(ID), nullable=False),
    Column("person_kind", String(16), nullable=False),
    Index("ix_recording_participants_person", "org_id", "person_id"),
)

# A data key wrapped by the master key. Deleting the row is crypto-shredding: the ciphertext
# cannot be read again, wherever copies of it went.
recording_keys = Table(
    "recording_keys",
    metadata,
    Column("recording_id", String(ID), ForeignKey("recordings.id"), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
)

# Proof of destruction: append-only (triggers in 0009).
recording_destructions = Table(
    "recording_destructions",
    metadata,
    Column("recording_id", String(ID), ForeignKey("recordings.id"), primary_key=True),
    Column("org_id", String(ID), nullable=False),
    Column("destroyed_at", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("destroyed_by", String(64), nullable=False),  # "job:retention" or "staff:<id>"
    Column("key_destroyed", Integer, nullable=False),
    Column("file_destroyed", Integer, nullable=False),
)

# Playback links (R13, 0012): one per stated reason, bound to the member of staff, short-lived,
# single use. Only the SHA-256 of the link's token is stored.
recording_playbacks = Table(
    "recording_playbacks",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("recording_id", String(ID), ForeignKey("recordings.id"), nullable=False, index=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("staff_id", String(ID), ForeignKey("staff.id"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)


# A session's live recording (issue 9): at most one running per session, whichever process
# starts it (`running_session` is the session id while it runs, NULL after: unique).
recording_runs = Table(
    "recording_runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("session_id", String(ID), nullable=False),
    Column("running_session", String(ID), nullable=True, unique=True),
    Column("purpose", String(64), nullable=False),
    Column("started_by", String(64), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
    Column("stop_reason", String(64), nullable=True),
    Index("ix_recording_runs_session", "session_id"),
)

# A child's answer on the day (R8): happy to be recorded in this session today, or not. The
# latest answer per participant counts; every answer is audited.
recording_day_answers = Table(
    "recording_day_answers",
    metadata,
    Column("session_id", String(ID), primary_key=True),
    Column("participant_id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("answer", String(8), nullable=False),  # yes|no
    Column("answered_at", BigInteger, nullable=False),
)
