"""`BlipItmReranker`: BLIP v1's image-text matching head (`BlipForImageTextRetrieval`).

The CPU choice: BLIP base (ViT-B/16 vision, BERT-base text with cross-attention) costs a
fraction of BLIP-2's ViT-g per image. Match probability = softmax(ITM logits)[1], as
`BlipForImageTextRetrieval(..., use_itm_head=True)` computes it, split into vision tower, then
text encoder cross-attending to the image + ITM head (see `SplitItmReranker` for why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search.models.rerankers.reranker import SplitItmReranker

if TYPE_CHECKING:
    import torch

__all__ = ["BlipItmReranker"]


class BlipItmReranker(SplitItmReranker):
    """A loaded `BlipForImageTextRetrieval` and its processor behind the `Reranker` protocol."""

    @staticmethod
    def text_position_limit(model: Any) -> int:
        return int(model.config.text_config.max_position_embeddings)

    def match_probabilities(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The ITM branch of `BlipForImageTextRetrieval.forward`: the text encoder reads the
        query while cross-attending to the image; the head classifies its first token."""
        import torch

        model = self._model
        count = image_embeds.shape[0]
        image_mask = torch.ones(
            image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device
        )
        hidden = model.text_encoder(
            input_ids=input_ids.expand(count, -1),
            attention_mask=attention_mask.expand(count, -1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
        ).last_hidden_state
        logits = model.itm_head(hidden[:, 0, :])
        probabilities: torch.Tensor = logits.float().softmax(dim=1)[:, 1]
        return probabilities
