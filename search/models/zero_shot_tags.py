"""Zero-shot tags from the index's own CLIP model: no second model, no training, any vocabulary.

Each label is written into several prompts ("a photo of a {}.", "a close-up photo of a {}.",
...) and its embedding is the re-normalised mean of the prompts' embeddings. This is the prompt
ensembling of the CLIP paper (Radford et al. 2021, section 3.1.4): one bare word is ambiguous
and unlike the captions CLIP was trained on, and averaging the embeddings of a few sentences
around it gained several points of zero-shot accuracy there at no cost per image, because the
average is computed once per label.

Scores are softmax probabilities over the whole vocabulary of the cosine similarities times
CLIP's logit scale (100, the value CLIP's learned temperature is clamped to), exactly as CLIP
classifies. Raw cosines are not comparable between labels or models (they crowd around 0.2-0.3
for everything); the softmax turns them into "how much better than every other label", so one
threshold means the same for every label, and scores of one image sum to at most 1.

Label embeddings depend only on (model, vocabulary, templates), so they are computed once per
machine: kept in memory per process and on disk in the user cache directory, shared by every
data directory (files are written atomically, so concurrent writers are safe). Computing them
is the only real cost of tagging: the text tower runs on the prompts trimmed to their real
length (about 8 of 77 tokens), 256 at a time, and on a CPU with one template per label
(`templates_for`): the full 12-template ensemble costs about a minute there for the shipped
709 labels, one template about 4 s. Tagging a batch of image vectors is then one matrix
product plus a softmax.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np

from search.errors import InputError, ModelMismatchError
from search.models.encoders.encoder import Encoder
from search.storage.atomic_files import atomic_write_bytes

__all__ = [
    "DEFAULT_LOGIT_SCALE",
    "DEFAULT_TAG_THRESHOLD",
    "DEFAULT_TOP_K",
    "DEFAULT_VOCABULARY_FILE",
    "PROMPT_TEMPLATES",
    "SINGLE_TEMPLATE",
    "ZeroShotTagger",
    "clear_label_embedding_cache",
    "load_vocabulary",
    "tagger_identity",
    "templates_for",
]

# Generic photo templates in the style of the CLIP paper's ImageNet ensemble (its "a photo of
# the large {}.", "itap of a {}.", ...), kept to those that read sensibly for objects, scenes
# and activities alike.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a good photo of a {}.",
    "a bad photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "itap of a {}.",
    "a picture of a {}.",
)

SINGLE_TEMPLATE: tuple[str, ...] = (PROMPT_TEMPLATES[0],)

DEFAULT_VOCABULARY_FILE = "tag_vocabulary.txt"
DEFAULT_LOGIT_SCALE = 100.0
DEFAULT_TOP_K = 5
DEFAULT_TAG_THRESHOLD = 0.1
_TEXT_BATCH_SIZE = 256
_CACHE_SIZE = 8

logger = logging.getLogger(__name__)
_cache_lock = threading.Lock()
_label_embeddings: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()


def load_vocabulary(path: Path | None = None) -> list[str]:
    """The labels in `path` (default: the vocabulary shipped with pixseek), one per line.

    Blank lines and lines starting with `#` are skipped, surrounding spaces stripped, and
    repeated labels kept once, in first-seen order.
    """
    if path is None:
        resource = files("search.models").joinpath(DEFAULT_VOCABULARY_FILE)
        where = f"the default tag vocabulary ({resource})"
        try:
            text = resource.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"Could not read {where}: {exc}. Reinstall pixseek, or pass your own vocabulary "
                "file."
            ) from exc
    else:
        where = f"tag vocabulary file {str(path)!r}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"Could not read {where}: {exc}. Give a UTF-8 text file with one label per line."
            ) from exc
    labels = list(
        dict.fromkeys(
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )
    )
    if not labels:
        raise InputError(
            f"The {where} holds no labels. Write one label per line (lines starting with '#' "
            "are comments)."
        )
    return labels


def tagger_identity(model_id: str, labels: Sequence[str]) -> str:
    """What decides the labels an image gets: the model and the vocabulary (deduplicated, in
    order). Recorded with the tags in the catalog."""
    return f"{model_id}#vocabulary-{_digest(tuple(dict.fromkeys(labels)))[:16]}"


def templates_for(choice: str, device: str) -> tuple[str, ...]:
    """The prompt templates for the `tag_templates` setting: `single`, `ensemble`, or `auto`
    (the ensemble where the text tower is cheap, on CUDA; one template on a CPU)."""
    if choice == "ensemble" or (choice == "auto" and device.startswith("cuda")):
        return PROMPT_TEMPLATES
    if choice in ("single", "auto"):
        return SINGLE_TEMPLATE
    raise InputError(f"tag_templates must be auto, single or ensemble, got {choice!r}.")


def _digest(items: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


def clear_label_embedding_cache() -> None:
    """Forget every cached label embedding matrix (the next tagger recomputes its own)."""
    with _cache_lock:
        _label_embeddings.clear()


def _cache_file(cache_dir: Path, key: tuple[str, str, str]) -> Path:
    return cache_dir / f"labels-{hashlib.sha256('|'.join(key).encode()).hexdigest()[:24]}.npy"


def _read_cached(cache_dir: Path | None, key: tuple[str, str, str], rows: int) -> np.ndarray | None:
    """Label embeddings an earlier process saved in `cache_dir`, or None."""
    if cache_dir is None:
        return None
    try:
        cached: np.ndarray = np.load(_cache_file(cache_dir, key), allow_pickle=False)
    except (OSError, ValueError):
        return None
    if cached.ndim != 2 or cached.shape[0] != rows or cached.dtype != np.float32:
        return None
    cached.setflags(write=False)
    return cached


def _save_cached(cache_dir: Path | None, key: tuple[str, str, str], embeddings: np.ndarray) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) costs only time."""
    if cache_dir is None:
        return
    buffer = io.BytesIO()
    np.save(buffer, embeddings, allow_pickle=False)
    try:
        atomic_write_bytes(_cache_file(cache_dir, key), buffer.getvalue())
    except OSError as exc:
        logger.warning(
            "Could not cache tag label embeddings in %s (%s); they will be computed again.",
            cache_dir,
            exc,
        )


def _compute_label_embeddings(
    encoder: Encoder, labels: Sequence[str], templates: Sequence[str], batch_size: int
) -> np.ndarray:
    texts = [template.format(label) for label in labels for template in templates]
    started = time.perf_counter()
    chunks = [
        np.asarray(encoder.encode_texts(texts[start : start + batch_size]), dtype=np.float32)
        for start in range(0, len(texts), batch_size)
    ]
    prompts = np.concatenate(chunks).reshape(len(labels), len(templates), -1)
    prompts /= np.maximum(np.linalg.norm(prompts, axis=2, keepdims=True), 1e-12)
    means = prompts.mean(axis=1)
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    means = np.ascontiguousarray(means, dtype=np.float32)
    means.setflags(write=False)
    logger.info(
        "Tag label embeddings: %d prompts for %d labels in %.1f s.",
        len(texts),
        len(labels),
        time.perf_counter() - started,
    )
    return means


def _check_tagger_arguments(
    labels: Sequence[str], templates: Sequence[str], logit_scale: float, text_batch_size: int
) -> None:
    """Refuse arguments that would give meaningless tags, naming what to change."""
    if not labels:
        raise InputError("The tag vocabulary is empty: give at least one label.")
    if not templates:
        raise InputError(
            "No prompt templates were given: give at least one, such as 'a photo of a {}.'."
        )
    for template in templates:
        if template.count("{}") != 1:
            raise InputError(
                f"Prompt template {template!r} must contain '{{}}' exactly once, where the "
                "label goes."
            )
    if not logit_scale > 0:
        raise InputError(f"logit_scale must be positive, got {logit_scale!r}; CLIP uses 100.")
    if text_batch_size < 1:
        raise InputError(f"text_batch_size must be at least 1, got {text_batch_size!r}.")


def _remember(key: tuple[str, str, str], embeddings: np.ndarray) -> None:
    """Keep `embeddings` in the in-process LRU (caller holds `_cache_lock`)."""
    _label_embeddings[key] = embeddings
    _label_embeddings.move_to_end(key)
    while len(_label_embeddings) > _CACHE_SIZE:
        _label_embeddings.popitem(last=False)


class ZeroShotTagger:
    """Tags image embeddings with the labels of a vocabulary, using the encoder's text tower.

    `vocabulary` defaults to the shipped one (`load_vocabulary()`); `templates` each hold one
    `{}` where the label goes. Label embeddings are computed in the constructor, or taken from
    the process-wide cache when another tagger already computed them for the same encoder
    `model_id`, vocabulary and templates, or read from `cache_dir` when another process did.
    With `compute=False` the constructor raises `LookupError` instead of computing them.

    `identity` names what decides the labels an image gets (model and vocabulary); the catalog
    records it with the tags, so images tagged by another model or vocabulary are tagged again.
    """

    def __init__(
        self,
        encoder: Encoder,
        vocabulary: Sequence[str] | None = None,
        *,
        templates: Sequence[str] = PROMPT_TEMPLATES,
        logit_scale: float = DEFAULT_LOGIT_SCALE,
        text_batch_size: int = _TEXT_BATCH_SIZE,
        cache_dir: Path | None = None,
        compute: bool = True,
    ) -> None:
        labels = load_vocabulary() if vocabulary is None else list(dict.fromkeys(vocabulary))
        _check_tagger_arguments(labels, templates, logit_scale, text_batch_size)
        self.model_id = encoder.model_id
        self.templates = tuple(templates)
        self.logit_scale = float(logit_scale)
        self._labels = tuple(labels)
        self.vocabulary_hash = _digest(self._labels)
        self.identity = tagger_identity(self.model_id, self._labels)
        key = (self.model_id, self.vocabulary_hash, _digest(self.templates))
        with _cache_lock:
            embeddings = _label_embeddings.get(key)
            if embeddings is None:
                embeddings = _read_cached(cache_dir, key, len(self._labels))
                if embeddings is None:
                    if not compute:
                        raise LookupError(f"no cached label embeddings for {self.identity}")
                    embeddings = _compute_label_embeddings(
                        encoder, self._labels, self.templates, text_batch_size
                    )
                    _save_cached(cache_dir, key, embeddings)
            _remember(key, embeddings)
        self.label_embeddings = embeddings

    @property
    def vocabulary_labels(self) -> list[str]:
        """The labels, in the order of the columns of `scores`."""
        return list(self._labels)

    def scores(self, image_vectors: np.ndarray) -> np.ndarray:
        """Per image (row), the softmax probability of every label: shape (n, len(vocabulary)).

        One matrix product for the whole batch; rows sum to 1.
        """
        vectors = np.asarray(image_vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        dim = self.label_embeddings.shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise ModelMismatchError(
                f"Image vectors of shape {tuple(np.shape(image_vectors))} cannot be tagged with "
                f"labels embedded by {self.model_id!r} (dimension {dim}): tag the vectors of the "
                "encoder that built the tagger."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
        logits = self.logit_scale * (vectors @ self.label_embeddings.T)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities: np.ndarray = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities

    def tag(
        self,
        image_vectors: np.ndarray,
        *,
        top_k: int = DEFAULT_TOP_K,
        threshold: float = DEFAULT_TAG_THRESHOLD,
    ) -> list[list[dict[str, float | str]]]:
        """Per image, up to `top_k` labels whose score is at least `threshold`, best first, as
        `{"label": ..., "score": ...}`; an image with no label that clears the threshold gets []."""
        if top_k < 0:
            raise InputError(f"top_k must be 0 or more, got {top_k!r}.")
        if not 0.0 <= threshold <= 1.0:
            raise InputError(
                f"threshold is a probability and must be between 0 and 1, got {threshold!r}."
            )
        probabilities = self.scores(image_vectors)
        keep = min(top_k, probabilities.shape[1])
        if keep == 0:
            return [[] for _ in range(probabilities.shape[0])]
        best = np.argpartition(-probabilities, keep - 1, axis=1)[:, :keep]
        tags: list[list[dict[str, float | str]]] = []
        for row, candidates in zip(probabilities, best, strict=True):
            # ties: vocabulary order
            ordered = candidates[np.lexsort((candidates, -row[candidates]))]
            tags.append(
                [
                    {"label": self._labels[i], "score": float(row[i])}
                    for i in ordered
                    if row[i] >= threshold
                ]
            )
        return tags
