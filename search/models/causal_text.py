"""Text embeddings at the length of the real tokens, not the whole context.

open_clip pads every query to the model's context (77 tokens for CLIP), but a search query or a
tag prompt is a dozen tokens. CLIP's text tower is causal: position i attends only to positions
<= i, so the output at the end-of-text token, which is what the model pools, does not depend on
the padding after it. Running the tower on the batch trimmed to its longest real sequence gives
the same vector for a fraction of the work (about a sixth for a 12-token query).

Only models where that argument holds are trimmed: open_clip's `CLIP` with a causal attention
mask and pooling at the end-of-text token (`argmax` or `eos`) or the first token, whose
tokenizer pads with 0. Anything else runs the whole context as open_clip does, in particular
the multilingual presets' `CustomTextCLIP` towers:

- `xlm-roberta-base-ViT-B-32`: a transformers XLM-RoBERTa encoder, bidirectional, mean-pooled
  over the attention mask it derives from the pad id (1; id 0 is the start token, so the
  "real length" rule here would be wrong for it);
- `ViT-B-16-SigLIP-i18n-256`: no causal mask and `last` pooling, the output at the final
  position of the padded context, which every token (padding included) feeds: trimming would
  change the vector.
"""

from __future__ import annotations

from typing import Any

__all__ = ["can_trim_text", "encode_text_trimmed"]

_TRIMMABLE_POOLING = ("argmax", "eos", "first")


def can_trim_text(model: Any) -> bool:
    """Whether `model`'s text tower gives the same pooled output on a trimmed batch."""
    from open_clip.model import CLIP

    return (
        isinstance(model, CLIP)
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", None) in _TRIMMABLE_POOLING
    )


def encode_text_trimmed(model: Any, tokens: Any) -> Any:
    """`model.encode_text(tokens)` (unnormalised) computed on the real length of the batch.

    `tokens` is the (n, context) tensor from the model's tokenizer, padded with 0 after the
    end-of-text token. The caller checks `can_trim_text(model)` first.
    """
    import torch
    from open_clip.transformer import text_global_pool

    real = tokens.ne(0)
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    length = int((real * (positions + 1)).amax().item()) if tokens.numel() else 1
    length = max(1, length)
    text = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(
        x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
