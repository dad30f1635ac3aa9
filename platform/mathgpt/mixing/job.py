"""The mix job: clean documents → token budgets → packed CPT shards; clean chats → SFT shards."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from mathgpt.config import MixingConfig
from mathgpt.io import clear_dir, join, parquet_set, read_columns
from mathgpt.manifest import stage_record
from mathgpt.mixing.cpt import build_cpt_shards, tokenize_to_parquet
from mathgpt.mixing.sft import STATUS_COUNTS, RenderChatsUDF, pack_rendered
from mathgpt.mixing.tokenize import load_tokenizer
from mathgpt.raydata import map_file_to_parquet, read_parquet
from mathgpt.schemas import PACKED_SEQUENCE

log = logging.getLogger(__name__)


def build_sft_shards(cfg: MixingConfig, chats: str, out_dir: str, pad_id: int) -> tuple[str, dict[str, Any]]:
    """Chats → rendered rows (Ray Data actors, once) → SFT shards; every chat is counted by its status."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sft = cfg.sft
    settings = {"tokenizer": cfg.tokenizer, "max_length": sft.max_length, "overflow": sft.overflow,
                "sources": sft.sources}
    rendered = map_file_to_parquet(chats, ["id", "messages", "source"], RenderChatsUDF, settings,
                                   join(out_dir, "sft_rendered"), settings, cfg.concurrency, batch_format="pyarrow")
    status = read_columns(rendered, ["status"], pa.schema([("status", pa.string())])).column("status")
    by_status = dict(Counter(status.to_pylist()))
    sft_dir = join(out_dir, "sft")
    clear_dir(sft_dir)
    if rendered:
        (read_parquet(rendered, columns=["status", "input_ids", "loss_mask"])
         .map_batches(pack_rendered, fn_kwargs={"max_length": sft.max_length, "pad_id": pad_id, "pack": sft.pack},
                      batch_size=cfg.shard_rows, batch_format="pyarrow")
         .write_parquet(sft_dir))
    masks = read_columns(parquet_set(sft_dir, PACKED_SEQUENCE), ["loss_mask"], PACKED_SEQUENCE.arrow).column("loss_mask")
    if not len(masks):
        log.warning("mix: no SFT rows (%d chats in)", len(status))
    counts = {"sft_chats_in": len(status), "sft_rows": len(masks),
              "sft_assistant_tokens": int(pc.sum(pc.list_flatten(masks)).as_py() or 0)}
    counts.update({name: by_status[s] for s, name in STATUS_COUNTS.items() if by_status.get(s)})
    return sft_dir, counts


def run_mixing(cfg: MixingConfig, curate_dir: str, out_dir: str) -> dict[str, Any]:
    """Build packed CPT shards (`mathgpt.mixing.cpt`) and SFT shards from the curated documents and chats."""
    with stage_record(out_dir, "mix", cfg.model_dump(mode="json")) as record:
        documents = join(curate_dir, "documents")
        tok = load_tokenizer(cfg.tokenizer)
        tokenized_dir = cfg.tokenized_dir or join(out_dir, "tokenized")
        tokenized = tokenize_to_parquet(documents, cfg.tokenizer, tokenized_dir, cfg.concurrency)
        cpt, cpt_counts = build_cpt_shards(cfg, tokenized, join(out_dir, "cpt"), tok.pad_token_id)
        record.inputs = {"documents": documents, "n_documents": cpt_counts["documents_in"]}
        counts: dict[str, Any] = dict(cpt_counts)
        outputs: dict[str, Any] = {"cpt": cpt, "tokenized": tokenized_dir}
        if cfg.sft.enabled:
            outputs["sft"], sft_counts = build_sft_shards(cfg, join(curate_dir, "chats"), out_dir,
                                                          tok.pad_token_id)
            counts.update(sft_counts)
        record.counts, record.outputs = counts, outputs
    return counts
