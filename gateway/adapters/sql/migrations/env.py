"""Alembic environment: migrations run on a connection handed over by `migrate()`."""

from __future__ import annotations

from alembic import context

import gateway.adapters.sql.incident_schema  # noqa: F401  (registers the incident tables)
from gateway.adapters.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `gateway migrate` (gateway.adapters.sql.migrate)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
