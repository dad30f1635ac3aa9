"""The mix job: clean documents → token budgets → packed CPT shards; clean chats → SFT shards."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from mathgpt.config import MixingConfig
from mathgpt.io import clear_dir, join, parquet_set, read_columns
from mathgpt.manifest import stage_record
from mathgpt.errors import StageError
from mathgpt.mixing.cpt import build_cpt_shards, pack_planned_groups, shuffle_partitions, tokenize_to_parquet
from mathgpt.mixing.sft import KEPT, STATUS_COUNTS, RenderChatsUDF, pack_sft_group, sft_order
from mathgpt.models.metadata import load_tokenizer
from mathgpt.raydata import map_file_to_parquet, read_parquet
from mathgpt.schemas import PACKED_SEQUENCE

log = logging.getLogger(__name__)


def build_sft_shards(cfg: MixingConfig, chats: str, out_dir: str, pad_id: int) -> tuple[str, dict[str, Any]]:
    """Chats → rendered rows (Ray Data actors, once) → shuffled, packed SFT shards; every chat is counted.

    The kept chats are put in one seeded random order (`sft_order`) and packed in groups of shard_rows chats,
    one shard per group, so that a run that stops short of an epoch still sees every source in its share,
    and the shards are the same bytes on every run. The driver holds only the chats' ids and statuses.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    sft = cfg.sft
    settings = {"tokenizer": cfg.tokenizer, "max_length": sft.max_length, "overflow": sft.overflow,
                "sources": sft.sources}
    rendered = map_file_to_parquet(chats, ["id", "messages", "source"], RenderChatsUDF, settings,
                                   join(out_dir, "sft_rendered"), settings, cfg.concurrency, batch_format="pyarrow")
    meta = read_columns(rendered, ["id", "status"], pa.schema([("id", pa.string()), ("status", pa.string())]))
    by_status = dict(Counter(meta.column("status").to_pylist()))
    sft_dir = join(out_dir, "sft")
    clear_dir(sft_dir)
    plan = sft_order(meta.filter(pc.is_in(meta.column("status"), pa.array(KEPT))).column("id"), cfg.shard_rows,
                     cfg.seed)
    if plan.num_rows:
        n_groups = int(pc.max(plan.column("group")).as_py()) + 1
        summaries = pack_planned_groups(plan, read_parquet(rendered, columns=["id", "input_ids", "loss_mask"]),
                                        shuffle_partitions(plan.num_rows * sft.max_length, n_groups), pack_sft_group,
                                        sft_dir=sft_dir, max_length=sft.max_length, pad_id=pad_id, pack=sft.pack)
        packed = sum(int(s["chats"]) for s in summaries)
        if packed != plan.num_rows:
            raise StageError(f"mix: packed {packed} SFT chats, planned {plan.num_rows}")
    masks = read_columns(parquet_set(sft_dir, PACKED_SEQUENCE), ["loss_mask"], PACKED_SEQUENCE.arrow).column("loss_mask")
    if not len(masks):
        log.warning("mix: no SFT rows (%d chats in)", meta.num_rows)
    counts = {"sft_chats_in": meta.num_rows, "sft_rows": len(masks),
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
