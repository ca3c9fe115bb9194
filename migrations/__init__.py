"""Alembic environment and revisions: the schema history of the catalog."""
