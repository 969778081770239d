"""Tables of consent collected online (R7), on the shared `metadata` (migration 0011).

`consent_links`: a guardian's personal links, only the token's SHA-256 and, once used, the
SHA-256 of the browser cookie it is bound to. `consent_signatures`: the electronic signature
behind a consent record (typed name, the exact text shown and its SHA-256, the policy version),
append-only like the consent history it belongs to (triggers, see 0011).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from gateway.adapters.sql.schema import ID, metadata

consent_links = Table(
    "consent_links",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("guardian_id", String(ID), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", String(ID), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("device_hash", String(64), nullable=True),
    Index("ix_consent_links_device", "device_hash"),
)

consent_signatures = Table(
    "consent_signatures",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("org_id", String(ID), ForeignKey("organisations.id"), nullable=False),
    Column("consent_record_id", String(ID), nullable=False, unique=True),
    Column("signer_kind", String(16), nullable=False),
    Column("signer_id", String(ID), nullable=False),
    Column("typed_name", String(200), nullable=False),
    Column("shown_text", Text, nullable=False),
    Column("shown_sha256", String(64), nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("signed_at", BigInteger, nullable=False),
    Column("link_id", String(ID), nullable=True),
)
