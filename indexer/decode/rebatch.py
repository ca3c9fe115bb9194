"""Joining the small batches decode workers build into encoder-sized ones.

DataLoader workers each build whole batches: small ones keep every worker busy, and the main
process joins them into batches of the encoder's size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from indexer.records import DecodedBatch

__all__ = ["join_batches", "rebatch"]


def rebatch(chunks: Iterable[DecodedBatch], size: int) -> Iterator[DecodedBatch]:
    """Join decoded chunks into batches of at least `size` images (the last may be smaller)."""
    waiting: list[DecodedBatch] = []
    count = 0
    for chunk in chunks:
        waiting.append(chunk)
        count += chunk.size
        if count >= size:
            yield join_batches(waiting)
            waiting, count = [], 0
    if waiting:
        yield join_batches(waiting)


def join_batches(chunks: list[DecodedBatch]) -> DecodedBatch:
    """One batch of every chunk's files, in order (pixels stay in step with `ok`)."""
    if len(chunks) == 1:
        return chunks[0]
    tensors = [c.pixels for c in chunks if c.pixels is not None]
    return DecodedBatch(
        pixels=torch.cat(tensors) if tensors else None,
        ok=[item for c in chunks for item in c.ok],
        failed=[item for c in chunks for item in c.failed],
        jpegs=[item for c in chunks for item in c.jpegs],
    )
