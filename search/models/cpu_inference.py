"""Running open_clip on a CPU as fast as the CPU allows while keeping fp32's vectors.

On a CPU with AMX (Xeon since Sapphire Rapids), both towers in bfloat16 run several times as fast
as in fp32 through oneDNN's AMX kernels: measured on 2 cores, image tower 3.6-6x, text 1.6x for
one query and 3x for the batched tag prompts, at cosine >= 0.9999 to fp32 (random and trained
weights). Converting takes a fraction of a second, so the very first run gains and nothing is
cached on disk. Without AMX, bf16 is not worth it: AVX512-BF16 alone (oneDNN capped at that ISA
on the same machine) ran the image tower at 0.6-0.8x fp32, and CPUs without it emulate bf16 more
slowly still, so `auto` keeps fp32 there.

Measured and not used (`benchmarks/encoder_backends.py` prints the table): `torch.compile` (2+
minutes of compiling on every cold start; +7% over bf16 afterwards), int8 dynamic quantisation of
the linear layers (1.5x, slower than bf16 and further from fp32), ONNX Runtime (fp32 slower than
eager for images; its int8 model misses the 0.999 bar on text; plus a dependency and ~40 s of
export), `channels_last` (one convolution in a ViT: no effect), `torch.jit.freeze` (none).

The conversion is checked when the model loads: a probe image and two texts are encoded in fp32
and in bf16, and if a cosine falls below `MIN_COSINE`, or anything fails, an fp32 model is used
instead and the log says why. A faster path is never required.

The conversion is done in place, tensor by tensor, without keeping the fp32 originals: holding
them for an exact undo put fp32 and bf16 weights in memory together (ViT-B-32: +600 MB of peak
RSS for the few seconds of the check, the largest peak of a whole first index). The rare failure
builds the fp32 model again instead (`rebuild`), which costs one more load, only then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from search.errors import ConfigError
from search.models.causal_text import can_trim_text, encode_text_trimmed

__all__ = [
    "CPU_PRECISIONS",
    "MIN_COSINE",
    "PROBE_TEXTS",
    "CpuPrecisionChoice",
    "CpuPrecisionResult",
    "apply_cpu_precision",
    "choose_cpu_precision",
    "native_bf16_unit",
    "probe_pixels",
]

logger = logging.getLogger(__name__)

CPU_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
# Vectors from a faster path must stay this close (cosine) to fp32 eager's.
MIN_COSINE = 0.999
PROBE_TEXTS = ("a photo of a dog on the beach at sunset", "x")


@dataclass(frozen=True)
class CpuPrecisionChoice:
    """What the model runs in on the CPU and why; `image_dtype` is the image tower's input dtype."""

    precision: Literal["fp32", "bf16"]
    reason: str
    image_dtype: Any  # torch.dtype


def native_bf16_unit() -> str | None:
    """The CPU feature that computes bf16 natively ("AMX-BF16", "AVX512-BF16"), or None."""
    import torch

    try:
        if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
            return None
        if torch.cpu._is_amx_tile_supported():  # every CPU with AMX tiles has AMX-BF16
            return "AMX-BF16"
        if torch.cpu._is_avx512_bf16_supported():
            return "AVX512-BF16"
    except Exception:  # noqa: BLE001 - private torch probes; missing means "not known to be native"
        return None
    return None


def choose_cpu_precision(requested: str = "auto") -> tuple[Literal["fp32", "bf16"], str]:
    """The precision for `requested` (a `CPU_PRECISIONS` value) on this CPU, and why."""
    if requested not in CPU_PRECISIONS:
        raise ConfigError(
            f"PIXSEEK_CPU_PRECISION is {requested!r}; expected one of {', '.join(CPU_PRECISIONS)}."
        )
    if requested == "fp32":
        return "fp32", "fp32 requested (PIXSEEK_CPU_PRECISION=fp32)"
    unit = native_bf16_unit()
    if requested == "bf16":
        return (
            "bf16",
            f"bf16 requested (PIXSEEK_CPU_PRECISION=bf16) on a CPU with {unit or 'no native bf16'}",
        )
    if unit == "AMX-BF16":
        return "bf16", "this CPU has AMX-BF16"
    if unit == "AVX512-BF16":
        return "fp32", "this CPU has AVX512-BF16 but no AMX, where bf16 measured slower than fp32"
    return "fp32", "this CPU has no native bf16 (AMX), where fp32 is fastest"


def probe_pixels(size: int) -> Any:
    """A fixed (1, 3, size, size) uint8 image with smooth gradients, edges and texture, for
    checking a converted model on something less odd than noise."""
    import torch

    ramp = torch.linspace(0, 1, size)
    y, x = torch.meshgrid(ramp, ramp, indexing="ij")
    red = x
    green = 0.5 + 0.5 * torch.sin(12 * y + 4 * x)
    blue = ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.08).float() * 0.8 + 0.1
    image = torch.stack([red, green, blue]).clamp(0, 1)
    return (image * 255).round().to(torch.uint8).unsqueeze(0)


def _probe_vectors(model: Any, pixels: Any, tokens: Any) -> Any:
    """L2-normalised (1 + len(tokens), dim) probe embeddings in float32: image then texts."""
    import torch

    with torch.inference_mode():
        dtype = next(model.visual.parameters()).dtype
        image = model.encode_image(pixels.to(dtype))
        text = (
            encode_text_trimmed(model, tokens)
            if can_trim_text(model)
            else model.encode_text(tokens)
        )
        vectors = torch.cat([image.float(), text.float()])
        return torch.nn.functional.normalize(vectors, dim=-1)


def _convert_model(model: Any, dtype: Any) -> None:
    """The conversion pixseek ships: both towers' weights to `dtype`, in place."""
    model.to(dtype)


@dataclass(frozen=True)
class CpuPrecisionResult:
    """The model to use (the converted one, or a rebuilt fp32 one) and the choice made."""

    model: Any
    choice: CpuPrecisionChoice


def apply_cpu_precision(
    model: Any,
    requested: str,
    normalised_pixels: Any,
    tokens: Any,
    *,
    rebuild: Callable[[], Any],
    convert: Callable[[Any, Any], None] | None = None,
) -> CpuPrecisionResult:
    """Switch an fp32 open_clip `model` on the CPU to the fastest precision that keeps its
    vectors within `MIN_COSINE` of fp32.

    `normalised_pixels` is a (1, 3, S, S) float32 model input (e.g. `probe_pixels` through the
    model's normalisation) and `tokens` a tokenised batch; both are encoded before and after the
    conversion (`convert`, default: the whole model to bf16, in place). When the conversion
    fails or misses the bar, `rebuild()` must return the same model in fp32 again, and the
    reason is logged.
    """
    import torch

    precision, reason = choose_cpu_precision(requested)
    if precision == "fp32":
        logger.info("CPU inference in fp32: %s", reason)
        return CpuPrecisionResult(model, CpuPrecisionChoice("fp32", reason, torch.float32))
    try:
        reference = _probe_vectors(model, normalised_pixels, tokens)
        (convert or _convert_model)(model, torch.bfloat16)
        converted = _probe_vectors(model, normalised_pixels, tokens)
        cosine = float((reference * converted).sum(dim=-1).min())
        if not cosine >= MIN_COSINE:  # also catches NaN
            raise ValueError(
                f"its probe vectors are at cosine {cosine:.5f} to fp32's, below {MIN_COSINE}"
            )
    except Exception as exc:  # noqa: BLE001 - a faster path is optional; fp32 always works
        why = f"bf16 was chosen ({reason}) but {exc}; keeping fp32"
        logger.warning("CPU inference in fp32: %s", why)
        return CpuPrecisionResult(rebuild(), CpuPrecisionChoice("fp32", why, torch.float32))
    logger.info("CPU inference in bf16 (%s; probe cosine to fp32 %.5f)", reason, cosine)
    image_dtype = next(model.visual.parameters()).dtype
    choice = CpuPrecisionChoice("bf16", f"{reason}; probe cosine to fp32 {cosine:.5f}", image_dtype)
    return CpuPrecisionResult(model, choice)
