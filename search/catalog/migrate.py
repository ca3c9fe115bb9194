"""Running the Alembic revisions shipped in the `migrations` package against a catalog."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "alembic_config",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "upgrade_database",
]


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the installed `migrations` package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this pixseek ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations package has no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the catalog at `connection` is at (None: an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog schema to `revision` (default: the newest)."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Take the catalog schema back to `revision` (tests walk the revisions down and up)."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
