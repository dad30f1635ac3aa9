"""The mix job: clean documents → token budgets → packed CPT shards; clean chats → SFT shards."""

from __future__ import annotations

import logging
from typing import Any

from mathgpt.config import MixingConfig
from mathgpt.io import clear_dir, join, read_parquet_rows, write_parquet
from mathgpt.manifest import stage_record
from mathgpt.mixing.cpt import build_cpt_shards, tokenize_to_parquet
from mathgpt.mixing.sft import sft_rows
from mathgpt.mixing.tokenize import load_tokenizer
from mathgpt.schemas import PACKED_SEQUENCE

log = logging.getLogger(__name__)


def write_shards(rows: list[dict[str, Any]], out_dir: str, shard_rows: int) -> list[str]:
    """Parquet shards of PackedSequence rows (replacing whatever shards were there)."""
    clear_dir(out_dir)
    paths = []
    for start in range(0, len(rows), shard_rows):
        path = join(out_dir, f"shard-{start // shard_rows:05d}.parquet")
        write_parquet(rows[start : start + shard_rows], path, PACKED_SEQUENCE)
        paths.append(path)
    return paths


def run_mixing(cfg: MixingConfig, curate_dir: str, out_dir: str) -> dict[str, Any]:
    """Build packed CPT shards (`mathgpt.mixing.cpt`) and SFT shards from the curated documents and chats."""
    with stage_record(out_dir, "mix", cfg.model_dump(mode="json")) as record:
        documents = join(curate_dir, "documents.parquet")
        tok = load_tokenizer(cfg.tokenizer)
        tokenized = tokenize_to_parquet(documents, cfg.tokenizer, join(out_dir, "tokenized"))
        cpt, cpt_counts = build_cpt_shards(cfg, tokenized, join(out_dir, "cpt"), tok.pad_token_id)
        record.inputs = {"documents": documents, "n_documents": cpt_counts["documents_in"]}
        counts: dict[str, Any] = dict(cpt_counts)
        outputs: dict[str, Any] = {"cpt": cpt, "tokenized": join(out_dir, "tokenized")}
        if cfg.sft.enabled:
            chats = read_parquet_rows(join(curate_dir, "chats.parquet"))
            sft = sft_rows(tok, chats, cfg.sft.max_length, cfg.sft.overflow, cfg.sft.pack, counts)
            outputs["sft"] = write_shards(sft, join(out_dir, "sft"), cfg.shard_rows)
            counts.update(sft_chats_in=len(chats), sft_rows=len(sft),
                          sft_assistant_tokens=sum(sum(r["loss_mask"]) for r in sft))
        record.counts, record.outputs = counts, outputs
    return counts
