"""Finding the images to index: folders (recursive), file lists and WebDataset tar shards, each
with the caption and JSON metadata that sit beside it. Every source yields the same record,
`indexer.records.FoundFile`; one module per kind of source:

- `folder`: folders walked recursively (hidden and system folders skipped, links handled);
- `file_list`: `--from-list FILE`, one path per line;
- `shards`: uncompressed WebDataset `.tar` shards, read by their headers only;
- `sidecars`: `x.txt` / `x.json` beside an image (or in its shard sample);
- `inputs`: the PATH arguments (brace patterns expanded) and the scope a scan may prune.

Sidecars are read only for items the caller does not already hold unchanged (`is_unchanged`),
so an unchanged shard is never read beyond its headers.
"""

from __future__ import annotations

from indexer.records import FoundFile, UnchangedCheck
from indexer.sources.file_list import iter_file_list
from indexer.sources.folder import IMAGE_EXTENSIONS, is_image_name, iter_image_files
from indexer.sources.inputs import PruneScope, expand_inputs, iter_sources, source_roots_for_prune
from indexer.sources.shards import SHARD_IMAGE_EXTENSIONS, is_shard_path, iter_shard
from indexer.sources.sidecars import CAPTION_MAX_CHARS, METADATA_MAX_BYTES, parse_sidecars

__all__ = [
    "CAPTION_MAX_CHARS",
    "IMAGE_EXTENSIONS",
    "METADATA_MAX_BYTES",
    "SHARD_IMAGE_EXTENSIONS",
    "FoundFile",
    "PruneScope",
    "UnchangedCheck",
    "expand_inputs",
    "is_image_name",
    "is_shard_path",
    "iter_file_list",
    "iter_image_files",
    "iter_shard",
    "iter_sources",
    "parse_sidecars",
    "source_roots_for_prune",
]
