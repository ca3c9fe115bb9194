"""What does reranking the top R cost per query, and how fast do captions come? Prints rerank
latency (ms per query) against R for BLIP v1 base ITM and BLIP-2 ITM (blip2-itm-vit-g sizes),
cold and with every image's vision features already cached, then BLIP v1 base caption
throughput.

    python -m benchmarks.rerank_latency                  # R = 8, 32, 128 on this CPU
    python -m benchmarks.rerank_latency --quick          # 20 s budget per cell, 2 captions
    python -m benchmarks.rerank_latency --device cuda    # bf16 (fp16 where unsupported)

Random weights cost what real weights cost (same shapes, same FLOPs), so the figures hold for
`Salesforce/blip-itm-base-coco`, `Salesforce/blip2-itm-vit-g` and
`Salesforce/blip-image-captioning-base`. Vision weights are drawn with std 0.02 instead of the
configs' 1e-10, like trained weights, so no denormal arithmetic slows the CPU. A cell whose
estimated time exceeds `--cell-budget-s` is not run (the first R always is): it shows `~N`,
extrapolated linearly from the per-image time of the row's last measured run. Generation is
forced to exactly `--new-tokens` tokens, so random weights cannot stop early.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

from search.models.captioners.blip_captioner import BlipCaptioner
from search.models.device import resolve_device
from search.models.hf_checkpoints import inference_dtype
from search.models.rerankers.blip2_itm_reranker import Blip2ItmReranker
from search.models.rerankers.blip_itm_reranker import BlipItmReranker
from search.models.rerankers.reranker import SplitItmReranker
from search.models.tiny_test_models import tiny_bert_tokenizer

__all__ = ["main"]

QUERY = "a red circle on a blue background"
OTHER_QUERY = "two dogs playing in the snow"
RerankerBuilder = Callable[[str, int, int], SplitItmReranker]  # (device, batch, cache size)


def _photos(count: int) -> list[Image.Image]:
    """Photo-sized noise images: preprocessing (resize from 640x480) is part of the cost."""
    rng = np.random.default_rng(0)
    shape = (480, 640, 3)
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(count)]


def _processor(image_size: int, *, blip2: bool) -> Any:
    from transformers import Blip2Processor, BlipImageProcessor, BlipProcessor

    images = BlipImageProcessor(size={"height": image_size, "width": image_size})
    tokenizer = tiny_bert_tokenizer()  # as many tokens as BERT's for plain English queries
    if blip2:
        return Blip2Processor(images, tokenizer, num_query_tokens=None)
    return BlipProcessor(images, tokenizer)


def _place(model: Any, device: str) -> Any:
    return model.to(device=device, dtype=inference_dtype(device)).eval()


def blip_base_itm(device: str, batch_size: int, cache: int) -> BlipItmReranker:
    """BLIP v1 base (`BlipConfig()` defaults): ViT-B/16 at 384 px, BERT-base text encoder."""
    from transformers import BlipConfig, BlipForImageTextRetrieval

    config = BlipConfig(vision_config={"initializer_range": 0.02})
    model = _place(BlipForImageTextRetrieval(config), device)
    processor = _processor(config.vision_config.image_size, blip2=False)
    return BlipItmReranker(
        model,
        processor,
        model_id="blip-base-random",
        batch_size=batch_size,
        feature_cache_size=cache,
    )


def blip2_itm_vit_g(device: str, batch_size: int, cache: int) -> Blip2ItmReranker:
    """Salesforce/blip2-itm-vit-g sizes: ViT-g/14 at 224 px (39 layers, width 1408),
    12-layer Q-Former with text input, 32 query tokens."""
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    config = Blip2Config(
        vision_config={"initializer_range": 0.02},
        qformer_config={"use_qformer_text_input": True, "vocab_size": 30523},
        num_query_tokens=32,
    )
    model = _place(Blip2ForImageTextRetrieval(config), device)
    processor = _processor(config.vision_config.image_size, blip2=True)
    return Blip2ItmReranker(
        model,
        processor,
        model_id="blip2-itm-vit-g-random",
        batch_size=batch_size,
        feature_cache_size=cache,
    )


def _timed(run: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _ms(seconds: float, estimated: bool) -> str:
    return f"{'~' if estimated else ''}{seconds * 1000:,.0f}"


def rerank_rows(
    build: RerankerBuilder,
    device: str,
    rs: Sequence[int],
    photos: Sequence[Image.Image],
    batch_size: int,
    budget_s: float,
) -> tuple[list[str], list[str], float]:
    """(cold cells, cached cells, seconds to build the model) for one architecture."""
    started = time.perf_counter()
    reranker = build(device, batch_size, max(rs))
    build_s = time.perf_counter() - started
    per_image = _timed(lambda: reranker.score(QUERY, photos[:2]), device) / 2  # warm-up
    per_image_cached: float | None = None
    cold: list[str] = []
    cached: list[str] = []
    for r in rs:
        images, keys = photos[:r], list(range(r))
        reranker.feature_cache.clear()
        if per_image * r > budget_s and r != rs[0]:  # the first R is always measured
            cold.append(_ms(per_image * r, estimated=True))
        else:
            seconds = _timed(partial(reranker.score, QUERY, images, keys=keys), device)
            per_image = seconds / r
            cold.append(_ms(seconds, estimated=False))
        if len(reranker.feature_cache) == r:  # the cold run cached all R images' features
            seconds = _timed(partial(reranker.score, OTHER_QUERY, images, keys=keys), device)
            per_image_cached = seconds / r
            cached.append(_ms(seconds, estimated=False))
        elif per_image_cached is not None:
            cached.append(_ms(per_image_cached * r, estimated=True))
        else:
            cached.append("-")
    return cold, cached, build_s


def caption_rate(
    device: str, photos: Sequence[Image.Image], new_tokens: int, batch_size: int
) -> float:
    """Images/s of BLIP v1 base captioning, exactly `new_tokens` tokens per caption."""
    from transformers import BlipConfig, BlipForConditionalGeneration

    config = BlipConfig(vision_config={"initializer_range": 0.02})
    model = _place(BlipForConditionalGeneration(config), device)
    model.generation_config.min_new_tokens = new_tokens
    captioner = BlipCaptioner(
        model,
        _processor(config.vision_config.image_size, blip2=False),
        model_id="blip-base-caption-random",
        batch_size=batch_size,
        max_new_tokens=new_tokens,
    )
    captioner.caption(photos[:1])  # warm-up
    return len(photos) / _timed(lambda: captioner.caption(photos), device)


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    threads, load, cores = torch.get_num_threads(), os.getloadavg()[0], os.cpu_count()
    return f"CPU, {threads} torch threads, load average {load:.1f} on {cores} cores"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rerank latency and caption throughput.")
    parser.add_argument("--quick", action="store_true", help="20 s budget per cell, 2 captions")
    parser.add_argument("--rs", type=int, nargs="+", default=[8, 32, 128], help="depths R")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass")
    parser.add_argument(
        "--cell-budget-s", type=float, default=150.0, help="run a cell only if estimated below"
    )
    parser.add_argument("--captions", type=int, default=8, help="images to caption")
    parser.add_argument("--new-tokens", type=int, default=20, help="tokens per caption")
    args = parser.parse_args(argv)
    if args.quick:
        args.cell_budget_s, args.captions = 20.0, 2
    device = resolve_device(args.device)
    photos = _photos(max(*args.rs, args.captions, 2))
    print(
        f"rerank latency, ms per query: random weights, {_machine(device)}, "
        f"{inference_dtype(device)}, batch {args.batch_size}"
    )
    rows: dict[str, RerankerBuilder] = {
        "BLIP v1 base ITM (ViT-B/16 384px + BERT-base)": blip_base_itm,
        "BLIP-2 ITM (blip2-itm-vit-g: ViT-g/14 224px + Q-Former)": blip2_itm_vit_g,
    }
    width = max(len(label) for label in rows) + 2

    def line(label: str, cells: Sequence[str], tail: str = "") -> None:
        print(label.ljust(width) + "".join(cell.rjust(11) for cell in cells) + tail)

    line("architecture", [f"R={r}" for r in args.rs], "   build s")
    for label, build in rows.items():
        cold, cached, build_s = rerank_rows(
            build, device, args.rs, photos, args.batch_size, args.cell_budget_s
        )
        line(label, cold, f"{build_s:10.1f}")
        line("  same, vision features cached", cached)
    print(
        f"~N: not run (over {args.cell_budget_s:.0f} s), linear in R from the row's measured "
        "per-image time"
    )
    rate = caption_rate(device, photos[: args.captions], args.new_tokens, batch_size=8)
    print(
        f"caption throughput, BLIP v1 base captioning ({args.captions} images, "
        f"{args.new_tokens} new tokens, greedy): {rate:.3f} images/s ({1 / rate:.2f} s/image)"
    )
    print(f"finished on {_machine(device)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
