"""Tiny BLIP and BLIP-2 models with seeded random weights, built in-process for tests.

They are the real transformers classes at toy sizes (width 32, two layers, 32x32 images), so
the rerank and caption code paths run end to end with no weights on disk: nothing here touches
the network or the Hugging Face cache. Their scores and texts mean nothing. Every builder seeds
torch inside `torch.random.fork_rng`, so one spec gives the same weights in every process and
the caller's random state is left alone. Tokenizers are built from vocabularies written here:
a lower-case WordPiece one for the BERT-style text towers (BLIP, the BLIP-2 Q-Former) and a
byte-level one for the OPT language model. Both cover any ASCII text without unknown tokens,
and the byte-level one decodes back to exactly the text it was given.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch
    from transformers import (
        Blip2ForConditionalGeneration,
        Blip2ForImageTextRetrieval,
        Blip2Processor,
        BlipForConditionalGeneration,
        BlipForImageTextRetrieval,
        BlipForQuestionAnswering,
        BlipProcessor,
    )

__all__ = [
    "TINY_IMAGE_SIZE",
    "TINY_NUM_QUERY_TOKENS",
    "TINY_SEED",
    "build_tiny_blip2_captioning",
    "build_tiny_blip2_itm",
    "build_tiny_blip_captioning",
    "build_tiny_blip_itm",
    "build_tiny_blip_vqa",
    "tiny_bert_tokenizer",
    "tiny_opt_tokenizer",
]

TINY_SEED = 0
TINY_IMAGE_SIZE = 32
TINY_NUM_QUERY_TOKENS = 4
_WIDTH = 32
_WORDS = (  # noqa: SIM905 - one readable line of words
    "a an the photo picture image of in on with and is are there what which how many colour color "
    "red green blue yellow black white circle square triangle background dog cat question answer"
).split()

ModelT = TypeVar("ModelT", bound="torch.nn.Module")


def tiny_bert_tokenizer() -> Any:
    """A BERT-style WordPiece tokenizer over letters, digits, punctuation and a few words.

    Carries BLIP's extra `[DEC]` (bos) and `[ENC]` tokens, so BLIP's decoders find their ids.
    """
    from transformers import BertTokenizer

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"]
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    continuations = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    tokens = dict.fromkeys(special + pieces + continuations + _WORDS)  # ordered, no duplicates
    vocab = {token: index for index, token in enumerate(tokens)}
    return BertTokenizer(vocab=vocab, bos_token="[DEC]", additional_special_tokens=["[ENC]"])


def tiny_opt_tokenizer() -> Any:
    """An OPT-style byte-level tokenizer (no merges): every byte is one token, `</s>` leads."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GPT2Tokenizer

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    return GPT2Tokenizer(
        vocab=vocab,
        merges=[],
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        add_bos_token=True,
    )


def _image_processor() -> Any:
    from transformers import BlipImageProcessor

    return BlipImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})


def _blip2_processor(tokenizer: Any, num_query_tokens: int | None) -> Blip2Processor:
    from transformers import Blip2Processor

    make: Any = Blip2Processor  # transformers leaves processor constructors unannotated
    processor: Blip2Processor = make(
        _image_processor(), tokenizer, num_query_tokens=num_query_tokens
    )
    return processor


def _seeded(build: Callable[[], ModelT], seed: int) -> ModelT:
    """Build a model with torch's RNG seeded, without disturbing the caller's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
        for name, parameter in model.named_parameters():
            if name == "query_tokens":  # transformers initialises them to zeros: all queries alike
                torch.nn.init.normal_(parameter.data, std=0.02)
    return model.eval()


def _blip2_vision_and_qformer(vocab_size: int, *, text_input: bool) -> dict[str, Any]:
    return {
        "vision_config": {
            "hidden_size": _WIDTH,
            "intermediate_size": 2 * _WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 8,
            "initializer_range": 0.02,  # the default 1e-10 makes every image look the same
        },
        "qformer_config": {
            "vocab_size": vocab_size,
            "hidden_size": _WIDTH,
            "intermediate_size": 2 * _WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 128,
            "cross_attention_frequency": 1,
            "use_qformer_text_input": text_input,
        },
        "num_query_tokens": TINY_NUM_QUERY_TOKENS,
        "image_text_hidden_size": 16,
    }


def _tiny_opt_config(vocab_size: int, tokenizer: Any) -> dict[str, Any]:
    return {
        "model_type": "opt",
        "vocab_size": vocab_size,
        "hidden_size": _WIDTH,
        "word_embed_proj_dim": _WIDTH,
        "ffn_dim": 2 * _WIDTH,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 256,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        # untied: with OPT's `</s>` as both bos and eos, tied random weights end every text at once
        "tie_word_embeddings": False,
    }


def build_tiny_blip2_itm(
    seed: int = TINY_SEED,
) -> tuple[Blip2ForImageTextRetrieval, Blip2Processor]:
    """A tiny `Blip2ForImageTextRetrieval` (Q-Former with text input) and its processor."""
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    processor = _blip2_processor(tiny_bert_tokenizer(), num_query_tokens=None)
    tokenizer = processor.tokenizer
    config = Blip2Config(
        **_blip2_vision_and_qformer(len(tokenizer), text_input=True),
        text_config=_tiny_opt_config(len(tokenizer), tiny_opt_tokenizer()),
    )
    return _seeded(lambda: Blip2ForImageTextRetrieval(config), seed), processor


def build_tiny_blip2_captioning(
    seed: int = TINY_SEED,
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """A tiny `Blip2ForConditionalGeneration` (OPT language model, `image_token_index` set)."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    processor = _blip2_processor(tiny_opt_tokenizer(), num_query_tokens=TINY_NUM_QUERY_TOKENS)
    tokenizer = processor.tokenizer
    config = Blip2Config(
        **_blip2_vision_and_qformer(len(tiny_bert_tokenizer()), text_input=False),
        text_config=_tiny_opt_config(len(tokenizer), tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(processor.image_token.content),
    )
    return _seeded(lambda: Blip2ForConditionalGeneration(config), seed), processor


def _tiny_blip_config() -> Any:
    from transformers import BlipConfig

    tokenizer = tiny_bert_tokenizer()
    return BlipConfig(
        vision_config={
            "hidden_size": _WIDTH,
            "intermediate_size": 2 * _WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 8,
            "initializer_range": 0.02,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": _WIDTH,
            "intermediate_size": 2 * _WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 128,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_text_hidden_size=16,
    )


def _blip_processor() -> BlipProcessor:
    from transformers import BlipProcessor

    make: Any = BlipProcessor  # transformers leaves processor constructors unannotated
    processor: BlipProcessor = make(_image_processor(), tiny_bert_tokenizer())
    return processor


def build_tiny_blip_itm(seed: int = TINY_SEED) -> tuple[BlipForImageTextRetrieval, BlipProcessor]:
    """A tiny BLIP v1 `BlipForImageTextRetrieval` and its processor."""
    from transformers import BlipForImageTextRetrieval

    config = _tiny_blip_config()
    return _seeded(lambda: BlipForImageTextRetrieval(config), seed), _blip_processor()


def build_tiny_blip_captioning(
    seed: int = TINY_SEED,
) -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """A tiny BLIP v1 `BlipForConditionalGeneration` and its processor."""
    from transformers import BlipForConditionalGeneration

    config = _tiny_blip_config()
    return _seeded(lambda: BlipForConditionalGeneration(config), seed), _blip_processor()


def build_tiny_blip_vqa(seed: int = TINY_SEED) -> tuple[BlipForQuestionAnswering, BlipProcessor]:
    """A tiny BLIP v1 `BlipForQuestionAnswering` (the companion that answers `ask`)."""
    from transformers import BlipForQuestionAnswering

    config = _tiny_blip_config()
    return _seeded(lambda: BlipForQuestionAnswering(config), seed), _blip_processor()
