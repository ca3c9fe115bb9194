"""`BlipCaptioner`: BLIP v1 captions, with a companion BLIP VQA model for questions.

The light preset for CPU machines. BLIP v1's captioning checkpoints
(`Salesforce/blip-image-captioning-base`) are trained to describe, not to answer: prompted with a
question they keep describing. So `ask` goes to a separate `BlipForQuestionAnswering` checkpoint
(`Salesforce/blip-vqa-base`), trained on VQA, which is loaded only when the first question
arrives: indexing runs that only caption never pay for it. Without a companion, `ask` raises
a `ModelError` saying how to name one (`--captioner CAPTION_SPEC+VQA_SPEC`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

from search.errors import ModelError

if TYPE_CHECKING:
    import torch
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

__all__ = ["AnswererLoader", "BlipCaptioner"]

AnswererLoader = Callable[[], "tuple[BlipForQuestionAnswering, Any]"]
"""Loads the VQA companion on first use: returns the model (on its device) and its processor."""


class BlipCaptioner:
    """A loaded `BlipForConditionalGeneration` and its processor behind `Captioner`.

    `load_answerer` (None: `ask` is unavailable) supplies the `BlipForQuestionAnswering` model
    that `ask` uses, named `answerer_id` in messages. Captions are unconditional (no text
    prompt), greedy unless `num_beams` > 1, at most `max_new_tokens` tokens long.
    """

    def __init__(
        self,
        model: BlipForConditionalGeneration,
        processor: Any,
        *,
        model_id: str,
        load_answerer: AnswererLoader | None = None,
        answerer_id: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 30,
        answer_max_new_tokens: int = 10,
        num_beams: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_id = model_id
        self.answerer_id = answerer_id
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.answer_max_new_tokens = answer_max_new_tokens
        self.num_beams = num_beams
        self._model: Any = cast(Any, model).eval()  # transformers' eval() is unannotated
        self._processor = processor
        self._load_answerer = load_answerer
        self._answerer: tuple[BlipForQuestionAnswering, Any] | None = None
        self._answerer_lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        device: torch.device = self._model.device
        return device

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in input order."""
        import torch

        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = [image.convert("RGB") for image in images[start : start + self.batch_size]]
            inputs = self._processor(images=batch, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                tokens = self._model.generate(
                    pixel_values=inputs["pixel_values"].to(self._model.vision_model.dtype),
                    max_new_tokens=self.max_new_tokens,
                    num_beams=self.num_beams,
                    do_sample=False,
                )
            captions.extend(self._decode(self._processor, tokens))
        return captions

    def ask(self, image: Image.Image, question: str) -> str:
        """The VQA companion's answer to `question` about `image`."""
        import torch

        model, processor = self._answering_model()
        inputs = processor(images=[image.convert("RGB")], text=[question], return_tensors="pt")
        inputs = inputs.to(model.device)
        with torch.inference_mode():
            tokens = model.generate(
                input_ids=inputs["input_ids"],
                pixel_values=inputs["pixel_values"].to(model.vision_model.dtype),
                attention_mask=inputs["attention_mask"],
                max_new_tokens=self.answer_max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
            )
        return self._decode(processor, tokens)[0]

    def _answering_model(self) -> tuple[BlipForQuestionAnswering, Any]:
        with self._answerer_lock:
            if self._answerer is None:
                if self._load_answerer is None:
                    raise ModelError(
                        f"Captioner {self.model_id!r} cannot answer questions: BLIP captioning "
                        "models are not trained for it and no BLIP VQA model is paired with this "
                        "one. Name one after a '+', e.g. --captioner "
                        "CAPTION_SPEC+Salesforce/blip-vqa-base (or +local-dir:PATH), or use a "
                        "BLIP-2 captioner."
                    )
                self._answerer = self._load_answerer()
            return self._answerer

    @staticmethod
    def _decode(processor: Any, tokens: torch.Tensor) -> list[str]:
        texts = processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]
