"""The one model registry: a model registered under a name is a SPEC of its family (loaded and
validated like any other), `clear_model_cache` forgets it, and every family words a name it
does not know the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from search.errors import ModelError
from search.models.registry import (
    clear_model_cache,
    load_captioner,
    load_encoder,
    load_reranker,
    register_captioner,
    register_encoder,
    register_reranker,
)
from search.models.specs import parse_encoder_spec, parse_generative_spec, spec_forms


class _Named:
    """Stands in for a model of any family: the registry needs nothing but `model_id`."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id


def _model(model_id: str) -> Any:
    return _Named(model_id)


@pytest.fixture(autouse=True)
def _forget_registrations() -> Iterator[None]:
    yield
    clear_model_cache()


def test_registered_names_load_and_validate_in_every_family() -> None:
    encoder, reranker, captioner = _model("enc-1"), _model("rr-1"), _model("cap-1")
    register_encoder("my-encoder", encoder)
    register_reranker("my-reranker", reranker)
    register_captioner("my-captioner", captioner)
    assert load_encoder("my-encoder", device="cpu", cpu_precision="fp32") is encoder
    assert load_reranker("my-reranker", device="cpu") is reranker
    assert load_captioner("my-captioner", device="cpu") is captioner
    assert parse_encoder_spec("my-encoder").model_id == "enc-1"
    assert parse_generative_spec("my-reranker", "reranker").model_id == "rr-1"
    assert parse_generative_spec("my-captioner", "captioner").model_id == "cap-1"
    assert "my-reranker" in spec_forms("reranker") and "my-reranker" not in spec_forms("captioner")
    clear_model_cache()
    with pytest.raises(ModelError, match="Unknown model spec 'my-encoder'"):
        load_encoder("my-encoder", device="cpu")


@pytest.mark.parametrize(
    ("load", "flag"),
    [(load_encoder, "model"), (load_reranker, "reranker"), (load_captioner, "captioner")],
)
def test_unknown_name_gets_one_message_in_every_family(load: Callable[..., Any], flag: str) -> None:
    expected = rf"^Unknown {flag} spec 'no-such-model'\. Use a preset \("
    with pytest.raises(ModelError, match=expected):
        load("no-such-model", device="cpu")
