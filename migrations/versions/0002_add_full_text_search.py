"""Add full-text search over file name words, caption and tags.

`images.search_text` holds the text to match; the application writes it. Each database indexes
it with its own engine:

- SQLite: an FTS5 external-content table `images_fts` (porter stemming, diacritics folded) kept
  in step with `images` by triggers. Note for later revisions: a `batch_alter_table` on
  `images` rebuilds the table on SQLite, which drops these triggers; such a revision must
  create them again (and run the `rebuild` command).
- PostgreSQL: a stored generated column `search_tsv` (english configuration) with a GIN index.

Neither the FTS5 tables nor `search_tsv` are in the SQLAlchemy models; the autogenerate
filters in `search.catalog.fulltext` leave them out of model/revision comparisons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = ("images_fts_after_insert", "images_fts_after_delete", "images_fts_after_update")

_FTS_DELETE = (
    "INSERT INTO images_fts(images_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text);"
)
_FTS_INSERT = "INSERT INTO images_fts(rowid, search_text) VALUES (new.id, new.search_text);"

SQLITE_UPGRADE = (
    (
        "CREATE VIRTUAL TABLE images_fts USING fts5("
        "search_text, content='images', content_rowid='id', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    ),
    f"CREATE TRIGGER images_fts_after_insert AFTER INSERT ON images BEGIN {_FTS_INSERT} END",
    f"CREATE TRIGGER images_fts_after_delete AFTER DELETE ON images BEGIN {_FTS_DELETE} END",
    (
        "CREATE TRIGGER images_fts_after_update AFTER UPDATE OF search_text ON images BEGIN "
        f"{_FTS_DELETE} {_FTS_INSERT} END"
    ),
    "INSERT INTO images_fts(images_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    op.add_column("images", sa.Column("search_text", sa.Text(), nullable=True))
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.add_column(
            "images",
            sa.Column(
                "search_tsv",
                postgresql.TSVECTOR(),
                sa.Computed(
                    "to_tsvector('english'::regconfig, coalesce(search_text, ''))", persisted=True
                ),
            ),
        )
        op.create_index("ix_images_search_tsv", "images", ["search_tsv"], postgresql_using="gin")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS images_fts")
    elif dialect == "postgresql":
        op.drop_index("ix_images_search_tsv", table_name="images")
        op.drop_column("images", "search_tsv")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("search_text")
