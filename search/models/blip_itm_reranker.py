"""`BlipItmReranker`: BLIP v1's image-text matching head (`BlipForImageTextRetrieval`).

The CPU choice: BLIP base (ViT-B/16 vision, BERT-base text with cross-attention) costs about a
tenth of BLIP-2's ViT-g per pair. Match probability = softmax(ITM logits)[1], as
`BlipForImageTextRetrieval(..., use_itm_head=True)` computes it; the forward pass is split into
vision tower, then text encoder cross-attending to the image + ITM head, so the query is
tokenized once per call and vision features can be cached per image key.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from search.models.reranker import VisionFeatureCache

if TYPE_CHECKING:
    import torch
    from transformers import BlipForImageTextRetrieval

__all__ = ["BlipItmReranker"]


class BlipItmReranker:
    """A loaded `BlipForImageTextRetrieval` and its processor behind the `Reranker` protocol.

    `batch_size` pairs go through the model at once; `feature_cache_size` images' vision
    features are kept when `score` is given keys (0 turns the cache off); queries longer than
    `max_query_tokens` tokens are truncated.
    """

    def __init__(
        self,
        model: BlipForImageTextRetrieval,
        processor: Any,
        *,
        model_id: str,
        batch_size: int = 32,
        feature_cache_size: int = 128,
        max_query_tokens: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_id = model_id
        self.batch_size = batch_size
        self.feature_cache = VisionFeatureCache(feature_cache_size)
        self._model = model.eval()
        self._image_processor = processor.image_processor
        self._tokenizer = processor.tokenizer
        self._max_query_tokens = min(max_query_tokens, model.config.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return self._model.device

    def score(
        self, query: str, images: Sequence[Image.Image], keys: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        """Match probability in [0, 1] of `query` with each image (float32, input order)."""
        import torch

        if keys is not None and len(keys) != len(images):
            raise ValueError(f"Got {len(keys)} keys for {len(images)} images; pass one key per image.")
        if not images:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            text = self._tokenizer(
                query, truncation=True, max_length=self._max_query_tokens, return_tensors="pt"
            ).to(self.device)
            probabilities = []
            for start in range(0, len(images), self.batch_size):
                stop = start + self.batch_size
                features = self.feature_cache.features(
                    images[start:stop], None if keys is None else keys[start:stop], self.encode_images
                )
                probabilities.append(self.match_probabilities(features, text["input_ids"], text["attention_mask"]))
            return torch.cat(probabilities).float().cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The vision tower's last hidden state for each image: (n, patches + 1, hidden)."""
        vision = self._model.vision_model
        pixels = self._image_processor([image.convert("RGB") for image in images], return_tensors="pt")
        pixel_values = pixels["pixel_values"].to(self.device, dtype=vision.dtype)
        return vision(pixel_values=pixel_values).last_hidden_state

    def match_probabilities(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """P(match) for each image's features paired with one tokenized query (1, length):
        the ITM branch of `BlipForImageTextRetrieval.forward`."""
        import torch

        model = self._model
        count = image_embeds.shape[0]
        hidden = model.text_encoder(
            input_ids=input_ids.expand(count, -1),
            attention_mask=attention_mask.expand(count, -1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device),
        ).last_hidden_state
        logits = model.itm_head(hidden[:, 0, :])
        return logits.float().softmax(dim=1)[:, 1]
