"""Add photo metadata for exact filters, and tag labels as rows.

- `images.taken_at_source` says where `taken_at` came from ('exif': DateTimeOriginal,
  'mtime': the file's modification time), `images.file_type` the format sniffed from the
  file's bytes (jpeg, png, ...). Both, like `taken_at`, `camera_make` and `camera_model`, are
  NULL on rows embedded before this revision: the next `pixseek index` over those files reads
  them from the file headers without embedding again (`indexer.stages.backfill`).
- An index on (collection_id, taken_at) for date filters and date sorts.
- `image_tags(image_id, label)`: the labels of `images.tags` (lower case), one row each, so
  that "all of these tags" / "any of these tags" filters and tag facets are indexed SQL on
  both databases (SQL over JSON arrays differs between SQLite and PostgreSQL and cannot use an
  index on either). Filled here from the existing `images.tags`.

SQLite: plain ADD COLUMN and CREATE TABLE (no table rebuild), so the full-text triggers of 0002
stay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 1000

_images = sa.table("images", sa.column("id", BigId), sa.column("tags", sa.JSON()))
_image_tags = sa.table("image_tags", sa.column("image_id", BigId), sa.column("label"))


def _labels(tags: Any) -> set[str]:
    """The distinct labels of one `images.tags` value (a list of {"label", "score"})."""
    if not isinstance(tags, list):
        return set()
    return {
        str(tag["label"]).strip().lower()[:200]
        for tag in tags
        if isinstance(tag, dict) and str(tag.get("label") or "").strip()
    }


def _copy_tag_labels() -> None:
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(_images.c.id, _images.c.tags)
            .where(_images.c.tags.is_not(None), _images.c.id > last_id)
            .order_by(_images.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        values = [
            {"image_id": image_id, "label": label}
            for image_id, tags in rows
            for label in sorted(_labels(tags))
        ]
        if values:
            connection.execute(_image_tags.insert(), values)
        last_id = rows[-1][0]


def upgrade() -> None:
    op.add_column("images", sa.Column("taken_at_source", sa.String(8), nullable=True))
    op.add_column("images", sa.Column("file_type", sa.String(16), nullable=True))
    op.create_index(
        "ix_images_collection_id_taken_at", "images", ["collection_id", "taken_at"], unique=False
    )
    op.create_table(
        "image_tags",
        sa.Column("image_id", BigId, autoincrement=False, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name="fk_image_tags_image_id_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "label", name="pk_image_tags"),
    )
    op.create_index(
        "ix_image_tags_label_image_id", "image_tags", ["label", "image_id"], unique=False
    )
    _copy_tag_labels()


def downgrade() -> None:
    op.drop_index("ix_image_tags_label_image_id", table_name="image_tags")
    op.drop_table("image_tags")
    op.drop_index("ix_images_collection_id_taken_at", table_name="images")
    with op.batch_alter_table("images", recreate="never") as batch:
        batch.drop_column("file_type")
        batch.drop_column("taken_at_source")
