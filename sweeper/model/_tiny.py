"""The embedded tiny causal LM: Llama architecture, a few million parameters, its own word-level tokenizer.

Built offline on first use from a seed (nothing is downloaded), saved with `save_pretrained`, and then loaded
through the very same `from_pretrained` path as any hub model or local checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path

from .._cache import build_once, cache_dir

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
# The built-in task speaks in these words; anything else maps to <unk>.
TASK_WORDS = ["sort", "the", "numbers", ":", "=", *[str(n) for n in range(32)]]

# A template whose rendering of prompt + answer starts with the rendering of the prompt alone, which TRL needs to
# split conversational pairs into prompt and completion.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] + ' ' }}"
    "{% if message['role'] == 'assistant' %}{{ '</s> ' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


WORDS, BYTES = "words", "bytes"  # the two built-in tokenizers


@dataclass(frozen=True)
class TinyModelShape:
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 256
    seed: int = 0
    # `words`: the built-in task's 44 words (anything else is <unk>); `bytes`: one token per UTF-8 byte, so any
    # text is read as written (real data on the tiny model; sequences are then as long as the text in bytes)
    tokenizer: str = WORDS

    def cache_key(self) -> str:
        fields = asdict(self)
        if self.tokenizer == WORDS:  # the key the word-level model always had: its cached copy stays valid
            del fields["tokenizer"]
        vocab = SPECIAL_TOKENS + (TASK_WORDS if self.tokenizer == WORDS else ["bytes"])
        payload = json.dumps({"shape": fields, "vocab": vocab, "v": 1}, sort_keys=True)
        return sha256(payload.encode()).hexdigest()[:12]


BYTES_SHAPE = TinyModelShape(max_position_embeddings=1024, tokenizer=BYTES)


def build_tokenizer(kind: str = WORDS):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if kind == BYTES:
        # GPT-2's byte-to-symbol alphabet with no merges: every byte is a token, nothing is unknown
        alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
        vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + alphabet)}
        core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
        core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        core.decoder = decoders.ByteLevel()
    else:
        vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + TASK_WORDS)}
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _build(shape: TinyModelShape, folder: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(shape.tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(shape.seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def tiny_model_path(shape: TinyModelShape | None = None) -> Path:
    """The folder of the built-in model, built on first use (deterministic under `shape.seed`)."""
    shape = shape or TinyModelShape()
    name = "tiny-llama" if shape.tokenizer == WORDS else f"tiny-llama-{shape.tokenizer}"
    target = cache_dir() / "models" / f"{name}-{shape.cache_key()}"
    return build_once(target, lambda folder: _build(shape, folder))
