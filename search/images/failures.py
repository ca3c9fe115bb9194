"""The one failure type of reading and decoding images.

It sits below both `search.images.source` (reading bytes) and `search.images.decode` (turning
bytes into pixels) so that each can raise it without importing the other: decoding reads
through `source`, and `source` must not import the decoder back.
"""

from __future__ import annotations

__all__ = ["DecodeFailure", "failure_kind"]


class DecodeFailure(Exception):
    """A file that cannot be indexed; `reason` is stored in the catalog as-is.

    Reasons read "kind: detail" (the indexing summary counts failures by kind)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def failure_kind(reason: str) -> str:
    """The kind of a failure reason, which groups counts everywhere they are shown (`pixseek
    index`, /metrics, the jobs page): the text before its first colon (`not an image: ...` ->
    `not an image`)."""
    return reason.split(":", 1)[0].strip() or "unknown"
