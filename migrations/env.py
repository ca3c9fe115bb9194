"""Alembic environment. Runs on the connection pixseek hands over (`config.attributes
["connection"]`), or on `sqlalchemy.url` when alembic is run by hand. Autogenerate skips the
full-text objects that exist outside the models (see `search.catalog.fulltext`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from search.catalog.fulltext import autogenerate_filters
from search.catalog.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        **autogenerate_filters(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        **autogenerate_filters(),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
