"""Build, with no network, a byte-level BPE tokenizer and a tiny Llama model as a normal HF directory.

Both are cached on disk (keyed by their build settings) so tests and the demo build them once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from mathgpt.paths import build_once, cache_dir, data_dir

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
BUILD_VERSION = 1


@dataclass(frozen=True)
class TinySpec:
    """Settings of the offline tiny model; the cache key is derived from them."""

    vocab_size: int = 4096
    hidden_size: int = 128
    intermediate_size: int = 344
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 4096
    max_training_chars: int = 3_000_000
    seed: int = 0

    def key(self) -> str:
        """A short hash naming the cache folder."""
        blob = json.dumps({**asdict(self), "v": BUILD_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _training_text(limit: int) -> Iterator[str]:
    """Bundled training-side text (GSM8K train, math textbooks, general text): never benchmark test sets."""
    files = [data_dir() / "gsm8k/train.jsonl", data_dir() / "corpus/math/textbooks.jsonl",
             data_dir() / "corpus/general/text_and_code.jsonl"]
    budget = limit
    for file in files:
        share = limit // len(files)
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                text = row.get("text") or f"{row.get('question', '')}\n{row.get('answer', '')}"
                yield text
                share -= len(text)
                budget -= len(text)
                if share <= 0 or budget <= 0:
                    break


def build_tokenizer(spec: TinySpec, out_dir: Path) -> None:
    """Train a byte-level BPE tokenizer on bundled text and save it with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_training_text(spec.max_training_chars), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>", unk_token=None,
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    fast.model_max_length = spec.max_position_embeddings
    fast.save_pretrained(out_dir)


def build_model(spec: TinySpec, out_dir: Path) -> None:
    """Initialise a tiny Llama with the tokenizer's special ids and save it as safetensors."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(out_dir)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True, torch_dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
        eos_token_id=[tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")],
    )
    model.save_pretrained(out_dir, safe_serialization=True)


def tiny_model_dir(spec: TinySpec | None = None) -> Path:
    """The cached tiny model directory, built on first use (process- and thread-safe)."""
    spec = spec or TinySpec()

    def build(tmp: Path) -> None:
        log.info("building the offline tiny model in %s", cache_dir() / f"tiny-{spec.key()}")
        build_tokenizer(spec, tmp)
        build_model(spec, tmp)
        (tmp / "mathgpt_tiny.json").write_text(json.dumps(asdict(spec), indent=2))

    return build_once(cache_dir() / f"tiny-{spec.key()}", "config.json", build)
