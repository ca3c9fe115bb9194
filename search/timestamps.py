"""Timestamps leave pixseek as time-zone-aware UTC, whatever the database handed back.

The catalog stores UTC. PostgreSQL (`timestamptz`) returns aware datetimes, but SQLite has no
time zone type and returns naive ones, which serialise as `2026-11-30T18:07:56` — not the
RFC 3339 `date-time` the OpenAPI schema promises, and read as local time by most clients.
`UtcDateTime` normalises at the schema boundary: a naive value is taken as UTC (that is what
the catalog wrote), an aware one is converted to UTC. Every response model with a timestamp
uses it, so the two databases give byte-identical JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["UtcDateTime", "as_utc"]


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive values are UTC already, by the catalog's rule)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
"""A `datetime` field that always holds (and serialises as) aware UTC: `...+00:00`."""
