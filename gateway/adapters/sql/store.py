"""The `Store` port on SQL (SQLite or PostgreSQL): durable truth, every change audited."""

from __future__ import annotations

from gateway.adapters.sql.stores.audit import AuditStore
from gateway.adapters.sql.stores.consent import ConsentStore
from gateway.adapters.sql.stores.organisations import OrganisationStore
from gateway.adapters.sql.stores.registry import RegistryStore
from gateway.adapters.sql.stores.sessions import SessionStore


class SqlStore(OrganisationStore, RegistryStore, ConsentStore, SessionStore, AuditStore):
    """One store per aggregate over one `StoreBase` (database, audited writer, clock), composed
    the way Synapse composes its DataStore: constructor and lifecycle come from the base, the
    join-read batch from `SessionStore`."""
