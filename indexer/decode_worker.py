"""The decode stage as a torch `Dataset`, so `DataLoader` worker processes decode and
preprocess while the main process runs the encoder (bounded prefetch queues, optional pinned
memory). Failures travel as data: one bad file never stops a batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import threading

import torch
from torch.utils.data import DataLoader, Dataset

from search.image_decode import DecodeFailure, decode_stored

__all__ = ["DecodedBatch", "decode_batches"]


@dataclass
class DecodedBatch:
    pixels: torch.Tensor | None  # (n_ok, 3, H, W)
    ok: list[dict[str, Any]]  # id, width, height, content_hash, in the order of `pixels`
    failed: list[tuple[int, str]]  # (id, reason)

    def pin_memory(self) -> DecodedBatch:
        """Called by DataLoader(pin_memory=True) so CUDA copies can be non-blocking."""
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


class _DecodeDataset(Dataset):
    def __init__(self, items: Sequence[tuple[int, str]], preprocess: Callable[[Any], torch.Tensor], draft_size: int) -> None:
        self.items = list(items)
        self.preprocess = preprocess
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> dict[str, Any]:
        image_id, stored_path = self.items[position]
        try:
            decoded = decode_stored(stored_path, draft_size=self.draft_size)
            pixels = self.preprocess(decoded.image)
        except DecodeFailure as exc:
            return {"id": image_id, "error": exc.reason}
        except Exception as exc:  # noqa: BLE001 - a decoder bug must fail one file, not the run
            return {"id": image_id, "error": f"cannot decode image: {type(exc).__name__}: {exc}"}
        return {
            "id": image_id,
            "pixels": pixels,
            "width": decoded.width,
            "height": decoded.height,
            "content_hash": decoded.content_hash,
        }


def _collate(samples: list[dict[str, Any]]) -> DecodedBatch:
    ok = [s for s in samples if "error" not in s]
    pixels = torch.stack([s.pop("pixels") for s in ok]) if ok else None
    return DecodedBatch(pixels=pixels, ok=ok, failed=[(s["id"], s["error"]) for s in samples if "error" in s])


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # decode workers: one core each, leave the rest to the encoder


def decode_batches(
    items: Sequence[tuple[int, str]],
    preprocess: Callable[[Any], torch.Tensor],
    *,
    batch_size: int,
    workers: int,
    draft_size: int,
    pin_memory: bool = False,
) -> DataLoader:
    """Iterate `DecodedBatch`es for `items` ((id, stored path) pairs), decoded in `workers`
    processes (0 = in this process)."""
    return DataLoader(
        _DecodeDataset(items, preprocess, draft_size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
        pin_memory=pin_memory,
        persistent_workers=False,
        # fork() from a thread of a multi-threaded server can inherit a held lock and hang;
        # the API runs jobs in threads, so they start workers with `spawn`.
        multiprocessing_context=None if threading.current_thread() is threading.main_thread() or not workers
        else "spawn",
    )
