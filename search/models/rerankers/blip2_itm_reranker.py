"""`Blip2ItmReranker`: BLIP-2's image-text matching head (`Blip2ForImageTextRetrieval`).

The match probability of a pair is softmax(ITM logits)[1], the head's "matches" class, exactly
as `Blip2ForImageTextRetrieval(..., use_image_text_matching_head=True)` computes it, but split
into vision tower, then Q-Former + ITM head (see `SplitItmReranker` for why).
`tests/test_rerank_caption_models.py` checks that the split gives transformers' own numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search.models.rerankers.reranker import SplitItmReranker

if TYPE_CHECKING:
    import torch

__all__ = ["Blip2ItmReranker"]


class Blip2ItmReranker(SplitItmReranker):
    """A loaded `Blip2ForImageTextRetrieval` and its processor behind the `Reranker` protocol."""

    @staticmethod
    def text_position_limit(model: Any) -> int:
        return int(model.config.qformer_config.max_position_embeddings)

    def match_probabilities(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The ITM branch of `Blip2ForImageTextRetrieval.forward`: query tokens and text share
        the Q-Former's self-attention, the query tokens cross-attend to the image, and the ITM
        head's logits averaged over the query tokens give the two-class score. The text carries
        no image tokens, which is what the forward pass reduces to when `image_token_index`
        is set (it strips them and uses their all-ones mask for the query tokens)."""
        import torch

        model = self._model
        count = image_embeds.shape[0]
        query_tokens = model.query_tokens.expand(count, -1, -1)
        query_length = query_tokens.shape[1]
        embeddings = model.embeddings(
            input_ids=input_ids.expand(count, -1), query_embeds=query_tokens
        )
        query_mask = attention_mask.new_ones((count, query_length))
        image_mask = torch.ones(
            image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device
        )
        hidden = model.qformer(
            query_embeds=embeddings,
            query_length=query_length,
            attention_mask=torch.cat([query_mask, attention_mask.expand(count, -1)], dim=1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
            return_dict=True,
        ).last_hidden_state
        head = model.itm_head
        logits = head(hidden[:, :query_length, :].to(head.weight.dtype)).mean(dim=1)
        probabilities: torch.Tensor = logits.float().softmax(dim=1)[:, 1]
        return probabilities
