"""`Blip2Captioner`: captions and answers from `Blip2ForConditionalGeneration`.

BLIP-2 is one model for both jobs: the Q-Former turns the image into `num_query_tokens` soft
prompt tokens for a frozen language model (OPT or Flan-T5), which then continues a text prompt.
Captioning uses an empty prompt; questions use `"Question: {question} Answer:"`, the format
BLIP-2 was evaluated with for zero-shot VQA. Generation is greedy with few new tokens by
default: each token costs a full language-model step, and beams multiply that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature, Blip2ForConditionalGeneration

__all__ = ["VQA_PROMPT", "Blip2Captioner", "vqa_prompt"]

VQA_PROMPT = "Question: {question} Answer:"


def vqa_prompt(question: str) -> str:
    """The prompt `ask` gives BLIP-2's language model for `question`."""
    return VQA_PROMPT.format(question=" ".join(question.split()))


class Blip2Captioner:
    """A loaded `Blip2ForConditionalGeneration` and its `Blip2Processor` behind `Captioner`.

    `batch_size` images are captioned per `generate` call; captions stop after
    `max_new_tokens` tokens and answers after `answer_max_new_tokens`; `num_beams` > 1 trades
    speed for slightly better text.
    """

    def __init__(
        self,
        model: Blip2ForConditionalGeneration,
        processor: Any,
        *,
        model_id: str,
        batch_size: int = 8,
        max_new_tokens: int = 30,
        answer_max_new_tokens: int = 10,
        num_beams: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_id = model_id
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.answer_max_new_tokens = answer_max_new_tokens
        self.num_beams = num_beams
        self._model: Any = cast(Any, model).eval()  # transformers' eval() is unannotated
        self._processor = processor
        # decoder-only language models (OPT) echo the prompt before the new tokens; T5 does not
        self._echoes_prompt = not self._model.config.text_config.is_encoder_decoder

    @property
    def device(self) -> torch.device:
        device: torch.device = self._model.device
        return device

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in input order."""
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            inputs = self.prompt_inputs(images[start : start + self.batch_size], "")
            captions.extend(self._generate(inputs, self.max_new_tokens))
        return captions

    def ask(self, image: Image.Image, question: str) -> str:
        """The model's answer to `question` about `image`, without the prompt."""
        return self._generate(self.question_inputs(image, question), self.answer_max_new_tokens)[0]

    def question_inputs(self, image: Image.Image, question: str) -> BatchFeature:
        """The exact model inputs `ask` generates from: the image and `vqa_prompt(question)`."""
        return self.prompt_inputs([image], vqa_prompt(question))

    def prompt_inputs(self, images: Sequence[Image.Image], prompt: str) -> BatchFeature:
        """Pixel values and token ids (image tokens, then `prompt`) for each image."""
        inputs = self._processor(
            images=[image.convert("RGB") for image in images],
            text=[prompt] * len(images),
            return_tensors="pt",
        )
        prepared: BatchFeature = inputs.to(self.device).to(self._model.vision_model.dtype)
        return prepared

    def _generate(self, inputs: BatchFeature, max_new_tokens: int) -> list[str]:
        import torch

        with torch.inference_mode():
            tokens = self._model.generate(
                **inputs, max_new_tokens=max_new_tokens, num_beams=self.num_beams, do_sample=False
            )
        if self._echoes_prompt:
            tokens = tokens[:, inputs["input_ids"].shape[1] :]
        texts = self._processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]
