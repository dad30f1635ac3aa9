"""What the stages read off a model besides its weights: the tokenizer they all use (with the chat template that
SFT data was rendered with) and the context length. One place, so that mixing, training's export, evaluation
and serving agree."""

from __future__ import annotations

from typing import Any

from mathgpt.io import is_uri, join, read_json
from mathgpt.models.resolve import resolve_model

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def load_tokenizer(ref: str) -> Any:
    """A fast tokenizer by model reference; one without a chat template gets the default one, and one without a
    pad token pads with EOS. Training's export saves this tokenizer, so a model trained on chats rendered with
    the default template keeps it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(ref))
    if not getattr(tok, "chat_template", None):
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def context_length(ref: str, default: int = 2048) -> int:
    """The model's context length (config.json's max_position_embeddings), read from a local folder, a URI
    (without fetching the weights) or a builtin model."""
    folder = ref if is_uri(ref) else resolve_model(ref)
    return int(read_json(join(folder, "config.json")).get("max_position_embeddings", default))
