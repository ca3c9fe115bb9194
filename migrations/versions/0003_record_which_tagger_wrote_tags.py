"""Record which tagger wrote each image's tags.

`images.tags_model` names the zero-shot tagger (encoder model id and vocabulary digest) whose
labels are in `images.tags`; NULL means the image is not tagged yet. Indexing tags images in a
pass of its own after embedding, resumable like captions: a run that stops early, a run with
tags turned off, or a changed vocabulary leaves rows whose `tags_model` is not the current
tagger, and the next `pixseek index` tags exactly those. Rows that already hold tags keep them
and are marked as written by an unknown tagger, so they are tagged again once.

SQLite: a plain ADD COLUMN (no table rebuild), so the full-text triggers of 0002 stay.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("tags_model", sa.Text(), nullable=True))
    op.execute("UPDATE images SET tags_model = 'unknown' WHERE tags IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("images", recreate="never") as batch:
        batch.drop_column("tags_model")
