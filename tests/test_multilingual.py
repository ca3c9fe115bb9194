"""Multilingual encoders: the presets name open_clip's multilingual models, their tokenizers
load offline from the Hugging Face cache, a cache without them fails at once with the one
message naming every missing repo, queries in any script encode, and text trimming is exact
where it is on and off where it would change the vector.

Real weights cannot be downloaded here, so tiny models with the same structure are built
in-process and laid out in a temporary hub cache as `hf download` leaves them: an XLM-RoBERTa
text tower (transformers, mean-pooled, pad id 1) with its own tokenizer repo (config.json and
tokenizer.json, no tokenizer_config.json, as xlm-roberta-base), and a SigLIP-i18n style tower
(bidirectional, `last` pooling) whose tokenizer sits next to its weights in a repo without the
config.json that transformers' AutoTokenizer asks a hub repo for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from search.errors import ModelError
from search.models.causal_text import can_trim_text, encode_text_trimmed
from search.models.encoders.open_clip_encoder import OpenClipEncoder
from search.models.registry import clear_model_cache, load_encoder
from search.models.specs import (
    GenerativeFamily,
    list_presets,
    parse_encoder_spec,
    parse_generative_spec,
)

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "search" / "models" / "configs"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
QUERIES = {
    "German": "ein roter Kreis auf blauem Hintergrund, größer als üblich",
    "Japanese": "青い背景に赤い丸",
    "Arabic": "دائرة حمراء على خلفية زرقاء",
    "English": "a red circle on a blue background",
}
# Architectures whose text tower must run on the whole context: trimming would be wrong there.
MUST_NOT_TRIM = {
    "xlm-roberta-base-ViT-B-32": "transformers XLM-RoBERTa: bidirectional, pad id 1, mean pool",
    "ViT-B-16-SigLIP-i18n-256": "no causal mask, pools the last position of the padded context",
}
MULTILINGUAL_PRESETS = {
    "multilingual": (
        "xlm-roberta-base-ViT-B-32",
        "laion5b_s13b_b90k",
        ["laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k", "xlm-roberta-base"],
    ),
    "multilingual-siglip": (
        "ViT-B-16-SigLIP-i18n-256",
        "webli",
        ["timm/ViT-B-16-SigLIP-i18n-256"],
    ),
}
XLMR_TOKENIZER_REPO = "pixseek-test/xlm-roberta-tiny"
XLMR_CLIP_REPO = "pixseek-test/xlm-roberta-clip-tiny"
SIGLIP_REPO = "pixseek-test/siglip-i18n-tiny"
TINY_VISION = {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16}


# -- a hub cache laid out as huggingface_hub writes it -------------------------------------------


@pytest.fixture
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty hub cache with downloads off, as huggingface_hub, transformers and open_clip
    see it (huggingface_hub reads these settings once, at import)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    clear_model_cache()
    yield cache
    clear_model_cache()


def _snapshot(cache: Path, repo: str) -> Path:
    """The folder a repo's main revision is downloaded into (refs/main names the snapshot)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(SNAPSHOT)
    snapshot = folder / "snapshots" / SNAPSHOT
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def _pieces() -> list[tuple[str, float]]:
    """A unigram vocabulary covering every character of QUERIES, word-initial and not."""
    chars = sorted({char for text in QUERIES.values() for char in text if not char.isspace()})
    return [("▁", -2.0)] + [(c, -3.0) for c in chars] + [("▁" + c, -3.5) for c in chars]


def _save_xlmr_tokenizer(folder: Path) -> int:
    """A tiny XLM-RoBERTa tokenizer (<s>=0, <pad>=1, </s>=2, <unk>=3); its vocabulary size."""
    from transformers import XLMRobertaTokenizer

    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=[*specials, *_pieces(), ("<mask>", 0.0)])
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def _save_t5_style_tokenizer(folder: Path) -> int:
    """A tiny T5-style sentencepiece tokenizer (<pad>=0, </s>=1, <unk>=2), as SigLIP's."""
    from transformers import T5Tokenizer

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    tokenizer = T5Tokenizer(vocab=[*specials, *_pieces()], extra_ids=0)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def _save_xlmr_text_config(folder: Path, vocab_size: int, context: int, width: int = 32) -> None:
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=context + 2,  # RoBERTa positions start after the pad id
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ).save_pretrained(folder)


def _save_open_clip_repo(folder: Path, model_cfg: dict[str, Any], seed: int) -> None:
    """open_clip_config.json and seeded random open_clip_model.safetensors, as
    `open_clip.push_to_hf_hub` lays out a model repo."""
    import open_clip
    from safetensors.torch import save_file

    config = {
        "model_cfg": model_cfg,
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    build_cfg = json.loads(json.dumps(model_cfg))
    build_cfg.pop("custom_text", None)
    if "hf_model_name" in build_cfg["text_cfg"]:
        build_cfg["text_cfg"]["hf_model_pretrained"] = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CustomTextCLIP(**build_cfg)
    save_file(
        {name: tensor.contiguous() for name, tensor in model.state_dict().items()},
        str(folder / "open_clip_model.safetensors"),
    )


def _cache_tiny_xlmr_clip(cache: Path) -> str:
    """A tiny `xlm-roberta-base-ViT-B-32`: weights in one repo, text config and tokenizer in
    another (as laion/... and xlm-roberta-base). Returns the weights repo."""
    context = 24
    text_repo = _snapshot(cache, XLMR_TOKENIZER_REPO)
    vocab_size = _save_xlmr_tokenizer(text_repo)
    (text_repo / "tokenizer_config.json").unlink()  # xlm-roberta-base has none: config.json says
    _save_xlmr_text_config(text_repo, vocab_size, context)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": TINY_VISION,
        "text_cfg": {
            "hf_model_name": XLMR_TOKENIZER_REPO,
            "hf_tokenizer_name": XLMR_TOKENIZER_REPO,
            "hf_pooler_type": "mean_pooler",
            "context_length": context,
        },
    }
    _save_open_clip_repo(_snapshot(cache, XLMR_CLIP_REPO), model_cfg, seed=1)
    return XLMR_CLIP_REPO


def _cache_tiny_siglip_i18n(cache: Path) -> str:
    """A tiny `ViT-B-16-SigLIP-i18n-256`: bidirectional text tower pooled at the last position,
    tokenizer in the weights repo. Returns that repo."""
    folder = _snapshot(cache, SIGLIP_REPO)
    vocab_size = _save_t5_style_tokenizer(folder)
    model_cfg = {
        "embed_dim": 16,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": TINY_VISION,
        "text_cfg": {
            "context_length": 16,
            "vocab_size": vocab_size,
            "hf_tokenizer_name": SIGLIP_REPO,
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": 32,
            "heads": 2,
            "layers": 2,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
        },
    }
    _save_open_clip_repo(folder, model_cfg, seed=2)
    return SIGLIP_REPO


TINY_MODELS: dict[str, Callable[[Path], str]] = {
    "xlm-roberta": _cache_tiny_xlmr_clip,
    "siglip-i18n": _cache_tiny_siglip_i18n,
}


# -- presets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(MULTILINGUAL_PRESETS))
def test_multilingual_presets_name_open_clip_models(preset: str) -> None:
    architecture, pretrained, _ = MULTILINGUAL_PRESETS[preset]
    spec = parse_encoder_spec(preset)
    assert (spec.source, spec.architecture, spec.pretrained) == ("tag", architecture, pretrained)
    assert spec.model_id == f"open_clip:{architecture}/{pretrained}"
    assert list_presets()[preset]["description"]


@pytest.mark.parametrize("family", ["reranker", "captioner"])
def test_multilingual_presets_name_no_english_only_generative_model(
    family: GenerativeFamily,
) -> None:
    for preset in MULTILINGUAL_PRESETS:
        with pytest.raises(ModelError, match=f"preset '{preset}' names no {family}"):
            parse_generative_spec(preset, family)


@pytest.mark.parametrize("preset", sorted(MULTILINGUAL_PRESETS))
def test_empty_offline_cache_fails_at_once_naming_every_repo(preset: str, hub_cache: Path) -> None:
    import open_clip  # noqa: F401 - imported before the clock starts: the check is what is timed

    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        load_encoder(preset, device="cpu", cpu_precision="fp32")
    seconds = time.monotonic() - started
    assert seconds < 5, f"took {seconds:.1f} s"
    message = str(caught.value)
    for expected in [*MULTILINGUAL_PRESETS[preset][2], str(hub_cache), "HF_HUB_OFFLINE"]:
        assert expected in message, f"{expected!r} missing from: {message}"
    assert "local-dir:PATH" in message and "\n" not in message, message


def test_cached_weights_without_tokenizer_name_the_tokenizer_repo(hub_cache: Path) -> None:
    """Weights alone are not enough: the message names the repo still missing, only it."""
    weights_repo, tokenizer_repo = MULTILINGUAL_PRESETS["multilingual"][2]
    (_snapshot(hub_cache, weights_repo) / "open_clip_pytorch_model.bin").write_bytes(b"weights")
    with pytest.raises(ModelError) as caught:
        load_encoder("multilingual", device="cpu", cpu_precision="fp32")
    message = str(caught.value)
    assert f"Hugging Face repo {tokenizer_repo}: text-tower config and tokenizer" in message
    assert weights_repo not in message, message


# -- tiny models through the real loading path ---------------------------------------------------


def _tokenizer_of(encoder: Any) -> Any:
    return encoder._tokenizer


@pytest.mark.parametrize("kind", sorted(TINY_MODELS))
def test_tiny_multilingual_model_loads_offline_and_encodes_any_script(
    kind: str, hub_cache: Path
) -> None:
    repo = TINY_MODELS[kind](hub_cache)
    encoder = load_encoder(f"hf-hub:{repo}", device="cpu", cpu_precision="fp32")
    assert isinstance(encoder, OpenClipEncoder) and encoder.dim == 16
    texts = list(QUERIES.values())
    tokens = _tokenizer_of(encoder)(texts)
    hf_tokenizer = _tokenizer_of(encoder).tokenizer
    for language, row in zip(QUERIES, tokens.tolist(), strict=True):
        real = [t for t in row if t not in (hf_tokenizer.pad_token_id, hf_tokenizer.eos_token_id)]
        unknown = real.count(hf_tokenizer.unk_token_id)
        assert real and unknown == 0, f"{language}: {unknown} unknown of {len(real)} tokens"
    vectors = encoder.encode_texts(texts)
    assert vectors.shape == (len(texts), 16) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert len({vector.tobytes() for vector in vectors}) == len(texts)
    images = encoder.encode_images([Image.new("RGB", (40, 30), "red")])
    assert images.shape == (1, 16)


@pytest.mark.parametrize("kind", sorted(TINY_MODELS))
def test_multilingual_text_runs_the_whole_context_as_open_clip_does(
    kind: str, hub_cache: Path
) -> None:
    repo = TINY_MODELS[kind](hub_cache)
    encoder = load_encoder(f"hf-hub:{repo}", device="cpu", cpu_precision="fp32")
    assert isinstance(encoder, OpenClipEncoder)
    assert not can_trim_text(encoder._model) and not encoder._trim_text
    texts = list(QUERIES.values())
    with torch.inference_mode():
        full = encoder._model.encode_text(_tokenizer_of(encoder)(texts))
    expected = torch.nn.functional.normalize(full.float(), dim=-1).numpy()
    assert np.array_equal(encoder.encode_texts(texts), expected)


def test_siglip_last_pooling_depends_on_padding(hub_cache: Path) -> None:
    """Why SigLIP-i18n must not be trimmed: cutting the padding changes its text vector."""
    repo = _cache_tiny_siglip_i18n(hub_cache)
    assert not (_snapshot(hub_cache, repo) / "config.json").exists()  # as on the hub: none
    encoder = load_encoder(f"hf-hub:{repo}", device="cpu", cpu_precision="fp32")
    assert isinstance(encoder, OpenClipEncoder)
    tokens = _tokenizer_of(encoder)([QUERIES["Japanese"]])
    length = int(tokens.ne(0).sum())
    assert length < tokens.shape[1]
    with torch.inference_mode():
        full = encoder._model.text(tokens)
        trimmed = encoder._model.text(tokens[:, :length])
    assert float((full - trimmed).abs().max()) > 1e-3


def test_random_weights_need_no_text_tower_weights(hub_cache: Path, tmp_path: Path) -> None:
    """`MODEL/random` with a transformers text tower reads its config and tokenizer from the
    cache and downloads no pretrained text weights (the cached repo holds none)."""
    import open_clip

    _cache_tiny_xlmr_clip(hub_cache)
    configs = tmp_path / "open_clip_configs"
    configs.mkdir()
    config = json.loads(
        (_snapshot(hub_cache, XLMR_CLIP_REPO) / "open_clip_config.json").read_text()
    )
    (configs / "pixseek-test-xlmr-random.json").write_text(json.dumps(config["model_cfg"]))
    open_clip.add_model_config(str(configs))
    encoder = load_encoder("pixseek-test-xlmr-random/random", device="cpu", cpu_precision="fp32")
    assert encoder.encode_texts([QUERIES["Arabic"]]).shape == (1, 16)


# -- trimming over every shipped architecture ----------------------------------------------------


def _shipped_architectures() -> list[Any]:
    """Every architecture a preset or a shipped config names; the large ones are slow."""
    names = {preset["encoder"].split("/")[0] for preset in list_presets().values()}
    small = {path.stem for path in MODEL_CONFIGS.glob("*.json")}
    return [
        pytest.param(name, marks=() if name in small | set(MUST_NOT_TRIM) else pytest.mark.slow)
        for name in sorted(names | small)
    ]


def _cache_xlm_roberta_base_config(cache: Path) -> None:
    """xlm-roberta-base's published config.json (transformers reads it to build the tower)."""
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ).save_pretrained(_snapshot(cache, "xlm-roberta-base"))


@pytest.mark.parametrize("architecture", _shipped_architectures())
def test_text_trimming_is_exact_where_on_and_off_where_it_must_be(
    architecture: str, hub_cache: Path
) -> None:
    import open_clip

    from search.models.encoders.open_clip_configs import register_pixseek_configs

    register_pixseek_configs()
    if architecture in MUST_NOT_TRIM:  # structure only: built without memory on the meta device
        _cache_xlm_roberta_base_config(hub_cache)
        with torch.device("meta"):
            model = open_clip.create_model(
                architecture, pretrained=None, device="meta", pretrained_text=False
            )
        assert not can_trim_text(model), f"{architecture}: {MUST_NOT_TRIM[architecture]}"
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(architecture, pretrained=None).eval()
    assert can_trim_text(model), f"{architecture} is not trimmed: queries pay for the full context"
    tokens = open_clip.get_tokenizer(architecture)([*QUERIES.values(), "x"])
    with torch.inference_mode():
        trimmed = encode_text_trimmed(model, tokens)
        full = model.encode_text(tokens)
    difference = float((trimmed - full).abs().max())
    assert difference <= 1e-5, f"{architecture}: trimmed differs from full by {difference:g}"
