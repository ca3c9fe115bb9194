"""Running the Alembic revisions shipped in the `migrations` package against a catalog.

Alembic is imported only to change a schema (or to ask it for its head): it and the revision
files take a fifth of a second to load, which every command that merely opens the catalog
(`pixseek stats`, `jobs`, `search`) would pay. Checking a catalog is up to date needs neither:
`current_revision` reads Alembic's version table with one query and `SCHEMA_REVISION` names
the head this code expects.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SCHEMA_REVISION",
    "alembic_config",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "upgrade_database",
]

# The newest revision in migrations/versions: a new revision file bumps it (tests/test_cli_start.py
# fails until it equals Alembic's head).
SCHEMA_REVISION = "0004"

VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the installed `migrations` package (no alembic.ini needed)."""
    from alembic.config import Config

    # Alembic binds `sys.stdout` as a default argument when it is first imported; imported
    # lazily, that could be a test's or a CLI runner's capture stream, closed since.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(files("migrations")))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this pixseek ships, as Alembic reads it from the revision files."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations package has no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the catalog at `connection` is at (None: an empty database)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    # pixseek's revisions form one line, so the table holds one row (none: stamped at base)
    return str(rows[0]) if rows else None


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog schema to `revision` (default: the newest)."""
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Take the catalog schema back to `revision` (tests walk the revisions down and up)."""
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
