"""Zero-shot tags: prompt-ensembled label embeddings, softmax scores, thresholds, the once-per-
process label cache, the shipped vocabulary, and (slow) the trained tiny CLIP telling a circle
from a square."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from search.errors import InputError, ModelMismatchError
from search.models.encoders.encoder import Encoder
from search.models.zero_shot_tags import (
    PROMPT_TEMPLATES,
    ZeroShotTagger,
    clear_label_embedding_cache,
    load_vocabulary,
)

# The trained-world fixture lives in its own plugin module. Registering it here is harmless when
# conftest registers it too (pytest loads a plugin once).

SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon")
LABELS = ["circle", "square", "triangle", "dog", "beach", "city street"]


class KnownGeometryEncoder:
    """An honest `Encoder` whose text space is known in advance, driven by a label list.

    A text that mentions a label (the longest one, as whole words) embeds on that label's own
    axis, plus an offset in the spare axes that depends only on the rest of the sentence (the
    prompt template), as CLIP shares a "a photo of ..." direction between labels. A text naming
    no label lands on the first spare axis. Images are not drawn here: tests build image vectors
    with `image_vector`, so `encode_images` refuses honestly.
    """

    SPARE_AXES = 8

    def __init__(
        self, labels: Sequence[str], *, model_id: str | None = None, template_weight: float = 0.3
    ) -> None:
        self.labels = list(labels)
        self.dim = len(self.labels) + self.SPARE_AXES
        self.model_id = model_id or f"test-double:{uuid.uuid4().hex}"
        self.image_size = 32
        self.device = "cpu"
        self.pixel_transform = None  # no image tower
        self.template_weight = template_weight
        self.calls: list[int] = []  # batch size of every encode_texts call
        by_length = sorted(self.labels, key=len, reverse=True)
        self._pattern = re.compile(
            r"\b(" + "|".join(re.escape(label) for label in by_length) + r")\b"
        )

    def axis(self, label: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        vector[self.labels.index(label)] = 1.0
        return vector

    def image_vector(self, **weights: float) -> np.ndarray:
        """A unit image vector mixing label axes: `image_vector(circle=0.9, square=0.3)`."""
        vector = sum(
            (weight * self.axis(label.replace("_", " ")) for label, weight in weights.items()),
            np.zeros(self.dim, dtype=np.float32),
        )
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def _template_offset(self, rest: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(rest.encode()).digest()[:4], "little")
        offset = np.random.default_rng(seed).standard_normal(self.SPARE_AXES).astype(np.float32)
        return self.template_weight * offset / np.linalg.norm(offset)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            found = self._pattern.search(text)
            if found is None:
                row[len(self.labels)] = 1.0
                continue
            row[self.labels.index(found.group(1))] = 1.0
            row[len(self.labels) :] += self._template_offset(
                text[: found.start()] + "{}" + text[found.end() :]
            )
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise NotImplementedError(
            "KnownGeometryEncoder has no image tower; build vectors with image_vector()."
        )

    def encode_pixels(self, pixels: Any) -> np.ndarray:
        raise NotImplementedError(
            "KnownGeometryEncoder has no image tower; build vectors with image_vector()."
        )


@pytest.fixture(autouse=True)
def _fresh_label_cache() -> None:
    clear_label_embedding_cache()


@pytest.fixture
def encoder() -> KnownGeometryEncoder:
    return KnownGeometryEncoder(LABELS)


def test_the_test_double_is_an_encoder(encoder: KnownGeometryEncoder) -> None:
    assert isinstance(encoder, Encoder)
    texts = encoder.encode_texts(
        ["a photo of a circle.", "a photo of a city street.", "nothing here"]
    )
    assert texts.shape == (3, encoder.dim) and np.allclose(np.linalg.norm(texts, axis=1), 1.0)
    assert texts[1] @ encoder.axis("city street") > 0.9, "the longest label mentioned wins"


def test_the_named_shape_wins_and_tags_are_sorted_probabilities(
    encoder: KnownGeometryEncoder,
) -> None:
    tagger = ZeroShotTagger(encoder, LABELS)
    images = np.stack(
        [
            encoder.image_vector(circle=0.9, square=0.3),
            encoder.image_vector(square=1.0),
            encoder.image_vector(beach=0.8, dog=0.6),
        ]
    )
    tags = tagger.tag(images, top_k=3, threshold=0.0)
    assert [row[0]["label"] for row in tags] == ["circle", "square", "beach"], tags
    scores = tagger.scores(images)
    label = tagger.vocabulary_labels
    assert (
        scores[0, label.index("circle")]
        > scores[0, label.index("square")]
        > scores[0, label.index("dog")]
    )
    for row in tags:
        values = [t["score"] for t in row]
        assert values == sorted(values, reverse=True), row
        assert all(0.0 <= v <= 1.0 for v in values) and sum(values) <= 1.0 + 1e-6, row
        assert set(row[0]) == {"label", "score"} and isinstance(row[0]["score"], float)


def test_scores_are_a_softmax_over_the_vocabulary_at_the_logit_scale(
    encoder: KnownGeometryEncoder,
) -> None:
    image = encoder.image_vector(circle=0.9, square=0.3)
    sharp = ZeroShotTagger(encoder, LABELS).scores(image)
    assert sharp.shape == (1, len(LABELS)) and math.isclose(float(sharp.sum()), 1.0, rel_tol=1e-5)
    flat = ZeroShotTagger(encoder, LABELS, logit_scale=1.0).scores(image)
    tagger = ZeroShotTagger(encoder, LABELS)
    cosines = tagger.label_embeddings @ image
    expected = np.exp(cosines - cosines.max()) / np.exp(cosines - cosines.max()).sum()
    assert np.allclose(flat[0], expected, atol=1e-6)
    assert sharp.max() > 0.99 and flat.max() < 0.5, (sharp, flat)


def test_threshold_and_top_k_limit_the_tags(encoder: KnownGeometryEncoder) -> None:
    tagger = ZeroShotTagger(encoder, LABELS)
    torn = encoder.image_vector(circle=1.0, square=0.995)  # about half circle, half square
    (both,) = tagger.tag(torn[None, :], threshold=0.1)
    assert [t["label"] for t in both] == ["circle", "square"], both
    assert all(0.4 < t["score"] < 0.6 for t in both), both
    assert tagger.tag(torn, threshold=0.6) == [[]], "nothing clears the threshold: no tags"
    assert [t["label"] for t in tagger.tag(torn, top_k=1)[0]] == ["circle"]
    assert tagger.tag(torn, top_k=0) == [[]]
    assert len(tagger.tag(torn, top_k=100, threshold=0.0)[0]) == len(LABELS)
    assert tagger.tag(np.zeros((0, encoder.dim), dtype=np.float32)) == []
    with pytest.raises(InputError, match="between 0 and 1"):
        tagger.tag(torn, threshold=1.5)
    with pytest.raises(InputError, match="top_k"):
        tagger.tag(torn, top_k=-1)


def test_label_embedding_is_the_renormalised_mean_of_its_prompts(
    encoder: KnownGeometryEncoder,
) -> None:
    tagger = ZeroShotTagger(encoder, LABELS)
    prompts = encoder.encode_texts([template.format("dog") for template in PROMPT_TEMPLATES])
    mean = prompts.mean(axis=0)
    row = tagger.label_embeddings[tagger.vocabulary_labels.index("dog")]
    assert np.allclose(row, mean / np.linalg.norm(mean), atol=1e-6)
    assert np.allclose(np.linalg.norm(tagger.label_embeddings, axis=1), 1.0, atol=1e-6)
    assert row @ encoder.axis("dog") > (prompts @ encoder.axis("dog")).mean(), (
        "averaging sharpens the label"
    )


def test_label_embeddings_are_computed_once_per_model_vocabulary_and_templates() -> None:
    labels = [f"label{i}" for i in range(30)]
    encoder = KnownGeometryEncoder(labels)
    first = ZeroShotTagger(encoder, labels)
    texts = len(labels) * len(PROMPT_TEMPLATES)
    assert sum(encoder.calls) == texts and max(encoder.calls) <= 256, encoder.calls
    assert len(encoder.calls) == math.ceil(texts / 256), encoder.calls

    second = ZeroShotTagger(KnownGeometryEncoder(labels, model_id=encoder.model_id), labels)
    assert second.label_embeddings is first.label_embeddings
    assert sum(encoder.calls) == texts, "the second tagger reused the cached label embeddings"
    assert not first.label_embeddings.flags.writeable, (
        "a shared cache entry cannot be changed by one tagger"
    )

    ZeroShotTagger(encoder, labels[:-1])
    ZeroShotTagger(encoder, labels, templates=("a photo of a {}.",))
    other = KnownGeometryEncoder(labels)
    ZeroShotTagger(other, labels)
    assert sum(encoder.calls) == texts + (len(labels) - 1) * len(PROMPT_TEMPLATES) + len(labels)
    assert sum(other.calls) == texts, "another model_id gets its own label embeddings"


def test_vectors_of_another_dimension_are_refused(encoder: KnownGeometryEncoder) -> None:
    tagger = ZeroShotTagger(encoder, LABELS)
    with pytest.raises(ModelMismatchError, match=re.escape(encoder.model_id)):
        tagger.tag(np.ones((2, encoder.dim + 1), dtype=np.float32))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"vocabulary": []}, "vocabulary is empty"),
        ({"templates": ("a photo",)}, "exactly once"),
        ({"templates": ()}, "No prompt templates"),
        ({"logit_scale": 0.0}, "logit_scale must be positive"),
    ],
)
def test_bad_tagger_arguments_say_what_to_give(
    encoder: KnownGeometryEncoder, kwargs: dict[str, Any], expected: str
) -> None:
    kwargs.setdefault("vocabulary", LABELS)
    with pytest.raises(InputError, match=expected):
        ZeroShotTagger(encoder, **kwargs)


def test_shipped_vocabulary_has_hundreds_of_labels_including_the_shapes() -> None:
    labels = load_vocabulary()
    assert len(labels) >= 400 and len(set(labels)) == len(labels), len(labels)
    assert all(
        label == label.strip().lower() and label and not label.startswith("#") for label in labels
    )
    assert set(SHAPES) <= set(labels), set(SHAPES) - set(labels)
    for expected in (
        "dog",
        "beach",
        "mountain",
        "city street",
        "kitchen",
        "sunset",
        "cycling",
        "wedding",
        "crowd",
    ):
        assert expected in labels


def test_a_users_vocabulary_file_skips_comments_blanks_and_repeats(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(
        "# my labels\n\n  cat \ndog\ncat\n   # indented comment\nhot air balloon\n",
        encoding="utf-8",
    )
    assert load_vocabulary(path) == ["cat", "dog", "hot air balloon"]


def test_unusable_vocabulary_files_are_named_in_the_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"empty\.txt.*holds no labels"):
        load_vocabulary(empty)
    with pytest.raises(InputError, match=r"missing\.txt"):
        load_vocabulary(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match=r"binary\.txt.*UTF-8"):
        load_vocabulary(binary)
