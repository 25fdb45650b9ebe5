"""Alembic environment: run by `trellis db upgrade` with a connection supplied."""

from alembic import context

from trellis.db import Model
import trellis.models  # noqa: F401 - the core tables, for autogenerate
import trellis.automation.models  # noqa: F401

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `trellis db ...` calls alembic
    raise SystemExit("run migrations with `trellis db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Model.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
