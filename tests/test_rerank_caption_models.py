"""Rerankers and captioners end to end on tiny random BLIP / BLIP-2 models built in-process:
the real transformers classes run, at toy sizes, with no weights on disk and no network.
Random weights make scores and texts meaningless, so these tests pin shapes, ranges, ordering,
agreement with transformers' own forward pass, determinism, caching, spec resolution and the
errors a user meets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from search.errors import ModelError
from search.models import tiny_test_models as tiny
from search.models.captioners.blip2_captioner import Blip2Captioner, vqa_prompt
from search.models.captioners.captioner import Captioner
from search.models.hf_checkpoints import inference_dtype
from search.models.registry import clear_model_cache, load_captioner, load_reranker
from search.models.rerankers.blip2_itm_reranker import Blip2ItmReranker
from search.models.rerankers.blip_itm_reranker import BlipItmReranker
from search.models.rerankers.reranker import Reranker, SplitItmReranker
from search.models.specs import parse_generative_spec

QUERY = "a red circle on a blue background"
TINY_SPECS = ["blip2-tiny-test", "blip-tiny-test"]
Builder = Callable[[], tuple[Any, Any]]
TINY_FOLDERS = ["blip2-itm", "blip-itm", "blip2-caption", "blip-caption", "blip-vqa"]
TINY_BUILDERS: list[Builder] = [
    tiny.build_tiny_blip2_itm,
    tiny.build_tiny_blip_itm,
    tiny.build_tiny_blip2_captioning,
    tiny.build_tiny_blip_captioning,
    tiny.build_tiny_blip_vqa,
]
RERANKERS: dict[str, tuple[type[SplitItmReranker], Builder]] = {
    "blip2-tiny-test": (Blip2ItmReranker, tiny.build_tiny_blip2_itm),
    "blip-tiny-test": (BlipItmReranker, tiny.build_tiny_blip_itm),
}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Toy-sized ops gain nothing from threads, and on a busy machine every op would wait for
    descheduled worker threads (10x slower measured on 2 shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _noise_image(seed: int, size: tuple[int, int], mode: str) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Varied sizes and modes: the processors must resize and convert every one to RGB."""
    shapes = [(48, 40), (20, 64), (64, 64), (33, 17), (40, 48), (64, 30), (16, 16)]
    modes = ["RGB", "L", "RGBA", "RGB", "P", "RGB", "RGB"]
    return [
        _noise_image(seed, *shape_mode)
        for seed, shape_mode in enumerate(zip(shapes, modes, strict=True))
    ]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tiny model saved with save_pretrained (model + processor), one folder each."""
    root = tmp_path_factory.mktemp("saved-models")
    for name, build in zip(TINY_FOLDERS, TINY_BUILDERS, strict=True):
        model, processor = build()
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
    return root


def _rgb(images: list[Image.Image]) -> list[Image.Image]:
    return [image.convert("RGB") for image in images]


@pytest.mark.parametrize("spec", TINY_SPECS)
def test_reranker_gives_one_probability_per_image(spec: str, images: list[Image.Image]) -> None:
    reranker = load_reranker(spec, device="cpu")
    assert isinstance(reranker, Reranker)
    scores = reranker.score(QUERY, images)
    assert scores.shape == (len(images),), scores.shape
    assert scores.dtype == np.float32, scores.dtype
    assert np.all((scores >= 0) & (scores <= 1)), scores
    assert len(np.unique(scores)) == len(images), f"images should score differently: {scores}"
    assert reranker.score(QUERY, []).shape == (0,)


@pytest.mark.parametrize("spec", TINY_SPECS)
def test_reranker_ranks_the_same_whatever_the_order_and_batch_size(
    spec: str, images: list[Image.Image]
) -> None:
    reranker_class, build = RERANKERS[spec]
    model, processor = build()
    reference = reranker_class(model, processor, model_id=spec).score(QUERY, images)
    permutation = np.random.default_rng(1).permutation(len(images))
    shuffled = [images[index] for index in permutation]
    for batch_size in (1, 3, 64):
        reranker = reranker_class(model, processor, model_id=spec, batch_size=batch_size)
        scores = reranker.score(QUERY, shuffled)
        np.testing.assert_allclose(scores, reference[permutation], rtol=0, atol=1e-5)
        ranked = permutation[np.argsort(-scores, kind="stable")]
        assert list(ranked) == list(np.argsort(-reference, kind="stable")), (scores, reference)


@pytest.mark.parametrize("with_image_tokens", [False, True])
def test_blip2_reranker_equals_transformers_itm_forward(
    images: list[Image.Image], with_image_tokens: bool
) -> None:
    """The split forward (vision features first, query broadcast) reproduces
    `Blip2ForImageTextRetrieval(..., use_image_text_matching_head=True)`, for checkpoints with
    and without image tokens in their input ids."""
    import torch
    from transformers import Blip2Processor

    model, processor = tiny.build_tiny_blip2_itm()
    if with_image_tokens:
        processor = Blip2Processor(
            processor.image_processor,
            processor.tokenizer,
            num_query_tokens=tiny.TINY_NUM_QUERY_TOKENS,
        )
        model.config.image_token_index = processor.tokenizer.convert_tokens_to_ids("<image>")
    ours = Blip2ItmReranker(model, processor, model_id="x", batch_size=2).score(QUERY, images)
    inputs = processor(images=_rgb(images), text=[QUERY] * len(images), return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs, use_image_text_matching_head=True).logits_per_image
    np.testing.assert_allclose(ours, logits.softmax(dim=1)[:, 1].numpy(), rtol=0, atol=1e-6)


def test_blip_reranker_equals_transformers_itm_forward(images: list[Image.Image]) -> None:
    import torch

    model, processor = tiny.build_tiny_blip_itm()
    ours = BlipItmReranker(model, processor, model_id="x", batch_size=4).score(QUERY, images)
    inputs = processor(images=_rgb(images), text=[QUERY] * len(images), return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs, use_itm_head=True).itm_score
    np.testing.assert_allclose(ours, logits.softmax(dim=1)[:, 1].numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("spec", TINY_SPECS)
def test_same_spec_gives_same_model_in_every_load(spec: str, images: list[Image.Image]) -> None:
    first = load_reranker(spec, device="cpu")
    assert load_reranker(spec, device="cpu") is first, "a loaded reranker is kept and shared"
    first_scores = first.score(QUERY, images)
    first_captions = load_captioner(spec, device="cpu").caption(images[:3])
    clear_model_cache()
    second = load_reranker(spec, device="cpu")
    assert second is not first
    np.testing.assert_array_equal(second.score(QUERY, images), first_scores)
    assert load_captioner(spec, device="cpu").caption(images[:3]) == first_captions


def _weights_digest() -> str:
    """One digest over every tiny model's weights, in builder order."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for build in TINY_BUILDERS:
        model, _ = build()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_tiny_models_have_the_same_weights_in_every_process() -> None:
    """A fresh interpreter (its own import order and RNG history) builds identical weights."""
    script = "from tests.test_rerank_caption_models import _weights_digest as d; print(d())"
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.strip().splitlines()[-1] == _weights_digest()


def test_vision_feature_cache_reuses_features_and_stays_bounded(images: list[Image.Image]) -> None:
    model, processor = tiny.build_tiny_blip2_itm()
    reranker = Blip2ItmReranker(model, processor, model_id="x", batch_size=2, feature_cache_size=3)
    keys = [f"image-{index}" for index in range(len(images))]
    plain = reranker.score(QUERY, images)
    np.testing.assert_allclose(reranker.score(QUERY, images, keys=keys), plain, rtol=0, atol=1e-6)
    cache = reranker.feature_cache
    assert (len(cache), cache.misses) == (3, len(images)), (len(cache), cache.misses)
    again = reranker.score("another query", images[-3:], keys=keys[-3:])
    assert cache.hits == 3, "the three most recent images come from the cache"
    expected = reranker.score("another query", images[-3:])
    np.testing.assert_allclose(again, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="one key per image"):
        reranker.score(QUERY, images, keys=keys[:2])


@pytest.mark.parametrize("spec", TINY_SPECS)
def test_captioner_gives_one_text_per_image_and_answers(
    spec: str, images: list[Image.Image]
) -> None:
    captioner = load_captioner(spec, device="cpu")
    assert isinstance(captioner, Captioner)
    captions = captioner.caption(images)
    assert len(captions) == len(images), captions
    assert all(isinstance(text, str) and text for text in captions), captions
    assert captioner.caption([]) == []
    answer = captioner.ask(images[0], "what colour is the circle?")
    assert isinstance(answer, str) and answer, repr(answer)
    assert captioner.ask(images[0], "what colour is the circle?") == answer


def test_blip2_ask_prompts_question_then_answer(images: list[Image.Image]) -> None:
    assert vqa_prompt("  what colour\nis it? ") == "Question: what colour is it? Answer:"
    captioner = load_captioner("blip2-tiny-test", device="cpu")
    assert isinstance(captioner, Blip2Captioner)
    ids = captioner.question_inputs(images[0], "what colour is it?")["input_ids"][0].tolist()
    tokenizer = captioner._processor.tokenizer
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    queries = tiny.TINY_NUM_QUERY_TOKENS
    assert ids[:queries] == [image_token] * queries, ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Question: what colour is it? Answer:"
    assert not captioner.ask(images[0], "what colour is it?").startswith("Question:")


def test_saved_models_load_from_local_dir(saved_models: Path, images: list[Image.Image]) -> None:
    for name, spec in (("blip2-itm", "blip2-tiny-test"), ("blip-itm", "blip-tiny-test")):
        local = load_reranker(f"local-dir:{saved_models / name}", device="cpu")
        assert local.model_id == f"{name}:local-dir:{saved_models / name}"
        expected = load_reranker(spec, device="cpu").score(QUERY, images)
        np.testing.assert_array_equal(local.score(QUERY, images), expected)
    blip2 = load_captioner(f"local-dir:{saved_models / 'blip2-caption'}", device="cpu")
    expected_captions = load_captioner("blip2-tiny-test", device="cpu").caption(images[:2])
    assert blip2.caption(images[:2]) == expected_captions
    pair = f"local-dir:{saved_models / 'blip-caption'}+local-dir:{saved_models / 'blip-vqa'}"
    blip = load_captioner(pair, device="cpu")
    reference = load_captioner("blip-tiny-test", device="cpu")
    assert blip.caption(images[:2]) == reference.caption(images[:2])
    assert blip.ask(images[0], "what is it?") == reference.ask(images[0], "what is it?")


def test_blip_captioner_without_vqa_model_says_how_to_name_one(
    saved_models: Path, images: list[Image.Image]
) -> None:
    captioner = load_captioner(f"local-dir:{saved_models / 'blip-caption'}", device="cpu")
    assert captioner.caption(images[:1])
    with pytest.raises(ModelError, match=r"CAPTION_SPEC\+Salesforce/blip-vqa-base"):
        captioner.ask(images[0], "what is it?")


def test_checkpoint_of_another_task_is_refused(saved_models: Path) -> None:
    folder = saved_models / "blip-caption"
    with pytest.raises(ModelError, match="not a BlipForImageTextRetrieval checkpoint") as caught:
        load_reranker(f"local-dir:{folder}", device="cpu")
    assert "itm_head" in str(caught.value)


def test_missing_weights_offline_name_repo_cache_and_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    # huggingface_hub reads these once, at import; pin them to this test's empty offline cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cases = [
        (load_reranker, "Salesforce/blip-itm-base-coco"),
        (load_reranker, "hf-hub:Salesforce/blip2-itm-vit-g"),
        (load_captioner, "Salesforce/blip2-opt-2.7b"),
    ]
    for load, spec in cases:
        with pytest.raises(ModelError) as caught:
            load(spec, device="cpu")
        message = str(caught.value)
        repo = spec.removeprefix("hf-hub:")
        for expected in (repo, str(tmp_path / "hub"), "HF_HUB_OFFLINE", "local-dir:PATH"):
            assert expected in message, f"{expected!r} missing from: {message}"
        assert "Traceback" not in message and "\n" not in message, message


def test_spec_resolution() -> None:
    assert parse_generative_spec("tiny-test", "reranker").architecture == "blip2"
    assert parse_generative_spec("Salesforce/blip2-itm-vit-g", "reranker").architecture == "blip2"
    assert parse_generative_spec("Salesforce/blip-itm-base-coco", "reranker").architecture == "blip"
    base = parse_generative_spec("Salesforce/blip-image-captioning-base", "captioner")
    assert base.answerer is not None and base.answerer.location == "Salesforce/blip-vqa-base"
    pair = parse_generative_spec(
        "Salesforce/blip-image-captioning-large+Salesforce/blip-vqa-base", "captioner"
    )
    assert pair.model_id == (
        "blip-caption:Salesforce/blip-image-captioning-large+vqa:Salesforce/blip-vqa-base"
    )
    assert str(inference_dtype("cpu")) == "torch.float32"
    with pytest.raises(ModelError, match=r"Unknown reranker spec 'nonsense'.*local-dir:PATH"):
        parse_generative_spec("nonsense", "reranker")
    with pytest.raises(ModelError, match=r"has no config\.json"):
        parse_generative_spec("local-dir:/no/such/folder", "reranker")
    with pytest.raises(ModelError, match="BLIP-2 captioners answer questions themselves"):
        parse_generative_spec("Salesforce/blip2-opt-2.7b+Salesforce/blip-vqa-base", "captioner")
