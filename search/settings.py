"""Configuration: every setting is declared once, with its default and its environment variable.

Settings come from flags (the CLI passes them as keyword overrides) and from `PIXSEEK_*`
environment variables. Nothing reads the environment at import time, so tests build a
`Settings` per test instead of patching globals.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_cache_path, user_data_path
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


def _default_data_dir() -> Path:
    return user_data_path("pixseek", appauthor=False)


def _default_cache_dir() -> Path:
    return user_cache_path("pixseek", appauthor=False)


class Settings(BaseSettings):
    """All of pixseek's settings. Environment: `PIXSEEK_<NAME>`, e.g. `PIXSEEK_DATA_DIR`."""

    model_config = SettingsConfigDict(
        env_prefix="PIXSEEK_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the catalog (SQLite default), vectors, FAISS indexes and thumbnails "
        "live.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Per-machine cache shared by every data directory (tag label embeddings); safe "
        "to delete at any time.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog; unset means a SQLite file in the data "
        "directory. PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    model: str = Field(
        default="default",
        description="Encoder for new collections: a preset (default, quality, cpu, multilingual, "
        "multilingual-siglip, tiny-test), MODEL/PRETRAINED, MODEL/path/to/checkpoint, "
        "local-dir:PATH or hf-hub:ORG/REPO.",
    )
    reranker: str = Field(
        default="default",
        description="ITM reranker SPEC: a preset, a Hugging Face repo id "
        "(Salesforce/blip2-itm-vit-g, Salesforce/blip-itm-base-coco) or local-dir:PATH.",
    )
    captioner: str = Field(
        default="default",
        description="Captioning/VQA model SPEC: a preset, a repo id (Salesforce/blip2-opt-2.7b, "
        "Salesforce/blip-image-captioning-base) or local-dir:PATH.",
    )
    rerank_k: int | None = Field(
        default=None,
        ge=1,
        le=512,
        description="Candidates reranked per query; unset = 128 on CUDA, 16 on CPU.",
    )
    tags: bool = Field(
        default=True, description="Tag images at index time (zero-shot, with the index's CLIP)."
    )
    tag_vocabulary: Path | None = Field(
        default=None,
        description="Label file for tags (one label per line); unset = the shipped vocabulary.",
    )
    tag_templates: Literal["auto", "single", "ensemble"] = Field(
        default="auto",
        description="Prompts per tag label: single ('a photo of a {}.'), ensemble (12 templates, "
        "the CLIP paper's prompt ensembling, about 12x the one-off cost per model) or auto "
        "(ensemble on CUDA, single on CPU).",
    )
    tag_threshold: float = Field(
        default=0.1, ge=0, le=1, description="Lowest tag probability that is stored."
    )
    device: str = Field(
        default="auto", description="auto (CUDA when present), cpu, cuda or cuda:N."
    )
    batch_size: int = Field(default=32, ge=1, le=4096, description="Images per encoder batch.")
    workers: int | None = Field(
        default=None, ge=0, le=64, description="Decode worker processes; unset = one per CPU core."
    )
    jpeg_decode: Literal["auto", "workers", "device"] = Field(
        default="auto",
        description="Where plain JPEGs are decoded while indexing: workers (Pillow with draft() in "
        "the decode processes), device (torchvision on the encoder's device: nvJPEG on a GPU), "
        "auto (device when the encoder runs on CUDA, else workers).",
    )
    cpu_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="Precision of the CLIP encoder on a CPU (CUDA always runs fp16): bf16 encodes "
        "images about 3x as fast where the CPU has AMX, at cosine >= 0.999 to fp32 (checked at "
        "load, else fp32); fp32 gives the reference vectors exactly; auto = bf16 on CPUs with AMX, "
        "else fp32.",
    )
    admin_token: str | None = Field(
        default=None,
        description="Write/admin API routes (start and cancel indexing jobs) need "
        "'Authorization: Bearer <token>'. Unset: they answer only requests from this machine to "
        "a loopback address, and `pixseek serve` refuses a network address.",
    )
    read_token: str | None = Field(
        default=None,
        description="When set, read routes (search, images, stats, pages, /metrics) need "
        "'Authorization: Bearer <token>' (or the admin token); a browser may give it as the "
        "password of HTTP Basic auth. Unset: read access is public.",
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="Open the admin routes to every client when no admin token is set "
        "(`pixseek serve --insecure-no-auth`). Only for a trusted network.",
    )
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders the API may index (POST /api/jobs), separated by the path "
        "separator (':' on Linux) or as a JSON list. Unset: none through the API; the CLI is "
        "never restricted.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS), comma-separated or "
        "a JSON list, e.g. https://photos.example.org. Unset: CORS is off.",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest accepted upload, in bytes; a larger request body is refused with "
        "413 before it is read.",
    )
    max_upload_pixels: int = Field(
        default=64_000_000,
        ge=1,
        description="Largest accepted uploaded image, in pixels (width*height).",
    )
    index_save_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often a long index run saves its FAISS index (seconds).",
    )
    query_cache_size: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="Text-query embeddings kept in memory (LRU); 0 turns the cache off.",
    )
    warm_on_start: bool = Field(
        default=True,
        description="The server loads every collection's index and encoder when it starts (in the "
        "background; /readyz answers 503 until done), so the first query is as fast as the tenth.",
    )
    default_k: int = Field(
        default=24, ge=1, le=1000, description="Results per query when k is not given."
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        """`/photos:/srv/pics` (the PATH convention) or a JSON list, from the environment."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """`https://a.example,https://b.example` or a JSON list, from the environment."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    def resolved_database_url(self) -> str:
        """The catalog URL: the configured one, or the SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'catalog.db'}"

    def collection_dir(self, collection_id: int) -> Path:
        """Folder holding one collection's vector shards and FAISS index."""
        return self.data_dir / "collections" / str(collection_id)

    def thumbnail_dir(self) -> Path:
        return self.data_dir / "thumbnails"
