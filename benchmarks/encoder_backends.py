"""Which way of running the CLIP towers on this CPU is fastest, what it costs cold, and how far
its vectors move from fp32 eager.

    python -m benchmarks.encoder_backends                       # ViT-B-32-256, batch 32, 5 rounds
    python -m benchmarks.encoder_backends --model ViT-B-32/random --repeat 7
    python -m benchmarks.encoder_backends --backends eager-fp32,bf16,int8-dynamic
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python -m benchmarks.encoder_backends --backends bf16
                                               # this CPU with AMX switched off (AVX512-BF16 only)

Random weights (`MODEL/random`) cost exactly what real weights cost. Backends, each built from
the same fp32 model:

    eager-fp32       open_clip as loaded; text trimmed to the real tokens (`causal_text`)
    channels_last    the weights and input in channels_last memory format
    jit-freeze       image tower traced, `torch.jit.freeze` + `optimize_for_inference`
    torch.compile    inductor, `dynamic=True` for text
    bf16             both towers in bfloat16, exactly as pixseek ships it (`search.models.
                     cpu_inference`, load-time probe check included); "unsupported" where the CPU
                     has neither AMX nor AVX512-BF16, since torch would only emulate it
    compile-bf16     bf16 weights, then torch.compile
    int8-dynamic     `torch.ao.quantization.quantize_dynamic` on every nn.Linear
    onnxruntime      torch.onnx export (dynamo) + ONNX Runtime CPU, fp32; needs `onnxruntime`
    onnxruntime-int8 the same model through `onnxruntime.quantization.quantize_dynamic`

Columns:

    setup s      one-off cost on a cold start: convert / export / compile, plus the first call
                 at every shape timed (oneDNN primitive creation, compilation). For eager that
                 is the first calls alone. torch.compile starts from an empty inductor cache.
                 ONNX export would be cached per machine; its reload cost is printed below.
    b32, b1      image tower: images/s at batch `--batch-size` and at batch 1 (model only, on
                 normalised float pixels already in memory)
    text ms      text tower: ms to encode one query (p50 over a set of queries of 1-20 tokens)
    +MB          resident memory the backend added (RSS after setup minus before; rough, and
                 including its own copy of the weights: shipped bf16 converts in place instead)
    min cos      lowest cosine to fp32 eager over the sample (images: the timed batch of
                 photo-like synthetic images and noise; texts: the queries, vs full-context fp32)
    x eager      speed relative to eager-fp32 (b32 for images, text ms for texts)

Every number is the median over `--repeat` rounds; within a round the backends run in a rotated
order, so a noisy neighbour slows all of them alike. The spread line says how noisy it was.
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from search.models.causal_text import encode_text_trimmed
from search.models.cpu_inference import (
    PROBE_TEXTS,
    apply_cpu_precision,
    native_bf16_unit,
    probe_pixels,
)
from search.models.encoders.open_clip_encoder import OpenClipEncoder
from search.models.specs import parse_encoder_spec

QUERIES = [
    "dog",
    "a dog on a beach",
    "red car parked in front of an old brick house at sunset",
    "birthday cake with candles",
    "two children playing football in the park with their dog",
    "mountain lake",
    "snow",
    "a photo of my grandmother in her kitchen baking bread on a sunny morning",
]
ALL_BACKENDS = (
    "eager-fp32",
    "channels_last",
    "jit-freeze",
    "torch.compile",
    "bf16",
    "compile-bf16",
    "int8-dynamic",
    "onnxruntime",
    "onnxruntime-int8",
)

ImageFn = Callable[[torch.Tensor], torch.Tensor]
TextFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Backend:
    name: str
    image: ImageFn | None = None
    text: TextFn | None = None
    note: str = ""
    setup_s: float = 0.0
    extra_mb: float = float("nan")
    reload_s: float | None = None
    full_text: TextFn | None = None  # eager only: plain open_clip full-context encode_text
    full_text_ms: list[float] = field(default_factory=list)
    b32: list[float] = field(default_factory=list)
    b1: list[float] = field(default_factory=list)
    text_ms: list[float] = field(default_factory=list)
    image_cos: float = float("nan")
    text_cos: float = float("nan")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def trim(tokens: torch.Tensor) -> torch.Tensor:
    """The batch cut to its longest real sequence (what `encode_text_trimmed` runs on)."""
    length = int((tokens.ne(0) * torch.arange(1, tokens.shape[1] + 1)).amax())
    return tokens[:, : max(1, length)]


class TrimmedText(torch.nn.Module):
    """The text tower on already-trimmed tokens, with the length taken from the input's shape
    so that exporters and compilers see it as dynamic."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        model, length = self.model, text.shape[1]
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(text).to(cast) + model.positional_embedding[:length].to(cast)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = text_global_pool(
            model.ln_final(x),
            text,
            model.text_pool_type,
            eos_token_id=getattr(model, "text_eos_id", None),
        )
        projection = model.text_projection
        return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def sample_images(batch_size: int, size: int) -> torch.Tensor:
    """(n, 3, S, S) uint8: smooth photo-like scenes (gradients, blobs, stripes) and some noise."""
    generator = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, size)
    y, x = torch.meshgrid(ramp, ramp, indexing="ij")
    images = []
    for i in range(batch_size):
        if i % 4 == 3:
            images.append(torch.rand(3, size, size, generator=generator))
            continue
        a, b, c = torch.rand(3, generator=generator).tolist()
        base = torch.stack(
            [
                a * x + (1 - a) * y,
                0.5 + 0.5 * torch.sin((4 + 20 * b) * (x + c * y)),
                (1 - x) * c + y * (1 - c),
            ]
        )
        cx, cy, radius = torch.rand(3, generator=generator).tolist()
        blob = ((x - cx) ** 2 + (y - cy) ** 2 < 0.05 + 0.1 * radius).float()
        colour = torch.rand(3, 1, 1, generator=generator)
        texture = 0.08 * torch.randn(3, size, size, generator=generator)
        images.append(base * (1 - blob) + colour * blob + texture)
    return (torch.stack(images).clamp(0, 1) * 255).round().to(torch.uint8)


def _eager(model: Any) -> tuple[ImageFn, TextFn]:
    return model.encode_image, lambda tokens: encode_text_trimmed(model, tokens)


def _channels_last(model: Any) -> tuple[ImageFn, TextFn]:
    model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return (
        lambda pixels: model.encode_image(pixels.contiguous(memory_format=torch.channels_last)),
        lambda tokens: encode_text_trimmed(model, tokens),
    )


def _jit_freeze(model: Any, example: torch.Tensor) -> tuple[ImageFn, None]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices
        traced = torch.jit.trace(copy.deepcopy(model.visual), example[:1], check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    return frozen, None  # a trace fixes the text length: no trimmed text


def _compiled(model: Any, dtype: torch.dtype) -> tuple[ImageFn, TextFn]:
    model = copy.deepcopy(model).to(dtype)
    image = torch.compile(model.visual)
    text = torch.compile(TrimmedText(model), dynamic=True)
    return lambda pixels: image(pixels.to(dtype)), lambda tokens: text(trim(tokens))


def _bf16(
    model: Any, probe: torch.Tensor, probe_tokens: torch.Tensor
) -> tuple[ImageFn, TextFn, str]:
    """What pixseek ships (`apply_cpu_precision`), load-time probe check included."""
    model = copy.deepcopy(model)
    choice = apply_cpu_precision(model, "bf16", probe, probe_tokens)
    note = f"{native_bf16_unit() or 'emulated'}; " + (
        choice.reason.rsplit("; ", 1)[-1]
        if choice.precision == "bf16"
        else f"fell back: {choice.reason}"
    )
    return (
        lambda pixels: model.encode_image(pixels.to(choice.image_dtype)),
        lambda tokens: encode_text_trimmed(model, tokens),
        note,
    )


def _int8_dynamic(model: Any) -> tuple[ImageFn, TextFn]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )
    # open_clip reads the cast dtype off an nn.Linear weight, which a quantised Linear lacks
    model.transformer.get_cast_dtype = lambda: torch.float32
    return model.encode_image, lambda tokens: encode_text_trimmed(model, tokens)


def _onnx_export(
    model: Any, example_pixels: torch.Tensor, example_tokens: torch.Tensor, folder: Path
) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image_path, text_path = folder / "image.onnx", folder / "text.onnx"
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.visual,
            (example_pixels[:2],),
            image_path,
            dynamo=True,
            verbose=False,
            input_names=["pixels"],
            dynamic_shapes=({0: batch},),
        )
        torch.onnx.export(
            TrimmedText(model),
            (trim(example_tokens),),
            text_path,
            dynamo=True,
            verbose=False,
            input_names=["tokens"],
            dynamic_shapes=({0: batch, 1: length},),
        )
    return image_path, text_path


def _ort_sessions(image_path: Path, text_path: Path) -> tuple[ImageFn, TextFn]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    image = ort.InferenceSession(str(image_path), options, providers=["CPUExecutionProvider"])
    text = ort.InferenceSession(str(text_path), options, providers=["CPUExecutionProvider"])
    return (
        lambda pixels: torch.from_numpy(image.run(None, {"pixels": pixels.numpy()})[0]),
        lambda tokens: torch.from_numpy(text.run(None, {"tokens": trim(tokens).numpy()})[0]),
    )


def _ort_int8(image_path: Path, text_path: Path) -> tuple[Path, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = (image_path.with_suffix(".int8.onnx"), text_path.with_suffix(".int8.onnx"))
    for source, target in zip((image_path, text_path), out, strict=True):
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    return out


def _unavailable(name: str) -> str | None:
    """Why backend `name` cannot run on this machine, or None when it can."""
    if name in ("bf16", "compile-bf16") and native_bf16_unit() is None:
        return "unsupported: no AMX or AVX512-BF16 on this CPU (torch would emulate bf16, slowly)"
    if name.startswith("onnxruntime"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "not installed: pip install onnxruntime onnxscript"
    return None


def _prepare_onnx(
    backend: Backend,
    name: str,
    model: Any,
    pixels: torch.Tensor,
    tokens: torch.Tensor,
    folder: Path,
) -> None:
    """Export to ONNX (quantised for `onnxruntime-int8`), then time reloading the sessions."""
    paths = _onnx_export(model, pixels, tokens, folder / name)
    if name == "onnxruntime-int8":
        paths = _ort_int8(*paths)
    reload_started = time.perf_counter()
    backend.image, backend.text = _ort_sessions(*paths)
    backend.reload_s = time.perf_counter() - reload_started


def _prepare(
    backend: Backend,
    model: Any,
    pixels: torch.Tensor,
    tokens: torch.Tensor,
    folder: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Fill in `backend`'s image and text functions; raises when preparing it fails."""
    name = backend.name
    if name == "eager-fp32":
        backend.image, backend.text = _eager(model)
        backend.full_text = model.encode_text
    elif name == "channels_last":
        backend.image, backend.text = _channels_last(model)
    elif name == "jit-freeze":
        backend.image, backend.text = _jit_freeze(model, pixels)
        backend.note = "text: a trace fixes the length, so no trimmed text"
    elif name == "torch.compile":
        backend.image, backend.text = _compiled(model, torch.float32)
    elif name == "compile-bf16":
        backend.image, backend.text = _compiled(model, torch.bfloat16)
    elif name == "bf16":
        backend.image, backend.text, backend.note = _bf16(model, *probe)
    elif name == "int8-dynamic":
        backend.image, backend.text = _int8_dynamic(model)
    elif name in ("onnxruntime", "onnxruntime-int8"):
        _prepare_onnx(backend, name, model, pixels, tokens, folder)
    else:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(ALL_BACKENDS)}")


def build(
    name: str,
    model: Any,
    pixels: torch.Tensor,
    tokens: torch.Tensor,
    folder: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
) -> Backend:
    """Prepare backend `name` and time its preparation (not yet its first calls)."""
    backend = Backend(name)
    unavailable = _unavailable(name)
    if unavailable is not None:
        backend.note = unavailable
        return backend
    started = time.perf_counter()
    try:
        _prepare(backend, model, pixels, tokens, folder, probe)
    except Exception as exc:  # noqa: BLE001 - one failing backend must not hide the others
        backend.image = backend.text = None
        backend.note = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    backend.setup_s = time.perf_counter() - started
    return backend


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return float((a * b).sum(-1).min())


def warm_up(
    backend: Backend,
    pixels: torch.Tensor,
    query_tokens: list[torch.Tensor],
    reference_images: torch.Tensor,
    reference_texts: torch.Tensor,
) -> None:
    """First calls at every timed shape (counted as setup), and the cosines."""
    before = time.perf_counter()
    try:
        with torch.inference_mode():
            if backend.image is not None:
                backend.image_cos = _cosine(backend.image(pixels), reference_images)
                backend.image(pixels[:1])
            if backend.text is not None:
                texts = torch.cat([backend.text(tokens) for tokens in query_tokens])
                backend.text_cos = _cosine(texts, reference_texts)
    except Exception as exc:  # noqa: BLE001
        backend.image = backend.text = None
        backend.note = (
            f"failed on first call: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
        )
    backend.setup_s += time.perf_counter() - before


def time_round(backend: Backend, pixels: torch.Tensor, query_tokens: list[torch.Tensor]) -> None:
    with torch.inference_mode():
        if backend.image is not None:
            started = time.perf_counter()
            backend.image(pixels)
            backend.b32.append(len(pixels) / (time.perf_counter() - started))
            singles = []
            for i in range(3):
                started = time.perf_counter()
                backend.image(pixels[i : i + 1])
                singles.append(time.perf_counter() - started)
            backend.b1.append(1 / statistics.median(singles))
        for fn, times in (
            (backend.text, backend.text_ms),
            (backend.full_text, backend.full_text_ms),
        ):
            if fn is not None:
                for tokens in query_tokens:
                    started = time.perf_counter()
                    fn(tokens)
                    times.append((time.perf_counter() - started) * 1000)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_table(backends: list[Backend], batch_size: int) -> None:
    eager = next((b for b in backends if b.name == "eager-fp32"), None)
    eager_b32 = _median(eager.b32) if eager else float("nan")
    eager_text = _median(eager.text_ms) if eager else float("nan")
    header = (
        "backend",
        "tower",
        "setup s",
        f"b{batch_size} img/s",
        "b1 img/s",
        "text ms p50",
        "+MB",
        "min cos",
        "x eager",
        "note",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for b in backends:
        if b.image is None and b.text is None:
            print(" | ".join([b.name, "both", *["—"] * 7, b.note]))
            continue
        common = [
            _fmt(b.setup_s),
        ]
        if b.image is not None:
            b32 = _median(b.b32)
            print(
                " | ".join(
                    [
                        b.name,
                        "image",
                        *common,
                        _fmt(b32),
                        _fmt(_median(b.b1)),
                        "",
                        _fmt(b.extra_mb, 0),
                        _fmt(b.image_cos, 5),
                        _fmt(b32 / eager_b32, 2) + "x",
                        b.note,
                    ]
                )
            )
        text = _median(b.text_ms)
        print(
            " | ".join(
                [
                    b.name,
                    "text",
                    *common,
                    "",
                    "",
                    _fmt(text),
                    _fmt(b.extra_mb, 0),
                    _fmt(b.text_cos, 5),
                    _fmt(eager_text / text, 2) + "x" if b.text is not None else "—",
                    b.note if b.image is None else "",
                ]
            )
        )


def print_summary(
    backends: list[Backend], batch_size: int, repeat: int, load_before: float
) -> None:
    print(
        f"\nCPU, {torch.get_num_threads()} threads, batch {batch_size},"
        f" medians of {repeat} rounds\n"
    )
    print_table(backends, batch_size)
    eager = next(b for b in backends if b.name == "eager-fp32")
    full = _median(eager.full_text_ms)
    print(
        "\nreference: plain open_clip full-context encode_text (fp32),"
        f" one query: {full:.1f} ms p50"
    )
    for b in backends:
        if b.text is not None and b.text_ms:
            text_ms = _median(b.text_ms)
            print(f"  {b.name}: one query {text_ms:.1f} ms = {text_ms / full:.2f}x full context")
    for b in backends:
        if b.reload_s is not None:
            print(
                f"{b.name}: reload from an export cache (session creation only) {b.reload_s:.1f} s"
            )
    if eager.b32:
        low, high = min(eager.b32), max(eager.b32)
        print(
            f"noise: eager-fp32 b{batch_size} ranged {low:.1f}-{high:.1f} img/s over the rounds "
            f"({(high - low) / _median(eager.b32) * 100:.0f}% of the median); load average "
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="ViT-B-32-256/random", help="encoder SPEC (default ViT-B-32-256/random)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="images per timed batch (default 32)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed rounds; medians are shown (default 5)"
    )
    parser.add_argument(
        "--backends",
        default=",".join(ALL_BACKENDS),
        help="comma-separated subset of: " + ", ".join(ALL_BACKENDS),
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.backends.split(",") if name.strip()]
    if "eager-fp32" not in names:
        names.insert(0, "eager-fp32")  # the reference every other row is compared with
    # torch.compile's cost on a fresh machine: an empty inductor cache, not the one of earlier runs
    inductor_cache = tempfile.TemporaryDirectory(prefix="pixseek-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache.name
    load_before = os.getloadavg()[0]

    started = time.perf_counter()
    encoder = OpenClipEncoder(parse_encoder_spec(args.model), device="cpu", cpu_precision="fp32")
    load_s = time.perf_counter() - started
    model = encoder._model
    pixels = encoder.pixel_transform.normalise(sample_images(args.batch_size, encoder.image_size))
    query_tokens = [encoder._tokenizer([query]) for query in QUERIES]
    probe = (
        encoder.pixel_transform.normalise(probe_pixels(encoder.image_size)),
        encoder._tokenizer(list(PROBE_TEXTS)),
    )
    with torch.inference_mode():
        reference_images = model.encode_image(pixels)
        reference_texts = torch.cat([model.encode_text(tokens) for tokens in query_tokens])
    print(
        f"model {args.model}: loaded in {load_s:.1f} s; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {native_bf16_unit() or 'none'}"
    )

    backends = []
    with tempfile.TemporaryDirectory(prefix="pixseek-backends-") as folder:
        for name in names:
            gc.collect()
            rss = _rss_mb()
            backend = build(name, model, pixels, query_tokens[1], Path(folder), probe)
            warm_up(backend, pixels, query_tokens, reference_images, reference_texts)
            backend.extra_mb = _rss_mb() - rss
            print(f"  set up {name}: {backend.setup_s:.1f} s {backend.note}", flush=True)
            backends.append(backend)
        live = [b for b in backends if b.image is not None or b.text is not None]
        for round_index in range(max(1, args.repeat)):
            shift = round_index % max(1, len(live))
            for backend in live[shift:] + live[:shift]:
                time_round(backend, pixels, query_tokens)
    print_summary(backends, args.batch_size, args.repeat, load_before)
    inductor_cache.cleanup()


if __name__ == "__main__":
    main()
