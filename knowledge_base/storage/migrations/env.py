"""Alembic's environment: runs the migrations on the connection :mod:`knowledge_base.storage.migrate` hands over.

There is no ``alembic.ini``: ``migrate.py`` builds the configuration, opens the one locked
transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory locks) and passes its connection
in ``config.attributes``, so every migration of an upgrade commits together or not at all.
"""

from alembic import context

from knowledge_base.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `hotline db upgrade` (knowledge_base.storage.migrate.upgrade)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters a column by copying its table; batch mode does that.
    render_as_batch=connection.dialect.name == "sqlite",
    on_version_apply=context.config.attributes.get("on_version_apply", ()),
)
with context.begin_transaction():  # inside the caller's transaction: commits nothing itself
    context.run_migrations()
