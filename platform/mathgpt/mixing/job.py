"""The mix job: clean documents → token budgets → packed CPT shards; clean chats → SFT shards."""

from __future__ import annotations

import logging
import random
from typing import Any

from tqdm import tqdm

from mathgpt.config import MixingConfig, MixtureComponent
from mathgpt.errors import StageError
from mathgpt.io import join, read_parquet_rows, write_parquet
from mathgpt.manifest import stage_record
from mathgpt.raydata import map_with_actors
from mathgpt.mixing.budget import kind_matches, plan, targets
from mathgpt.mixing.pack import Packer
from mathgpt.mixing.sft import sft_rows
from mathgpt.mixing.tokenize import TokenizeUDF, load_tokenizer
from mathgpt.schemas import PACKED_SEQUENCE

log = logging.getLogger(__name__)


def tokenize_documents(docs: list[dict[str, Any]], tokenizer: str) -> list[dict[str, Any]]:
    """Tokenize every document in a Ray Data actor pool (EOS appended); order follows the input."""
    rows = map_with_actors([{"id": d["id"], "kind": d["kind"], "source": d["source"], "text": d["text"]}
                            for d in docs], TokenizeUDF, {"tokenizer": tokenizer})
    by_id = {r["id"]: r for r in rows}
    if len(by_id) != len(docs):
        raise StageError(f"tokenization returned {len(by_id)} rows for {len(docs)} documents")
    return [by_id[d["id"]] for d in docs]


def _components(cfg: MixingConfig, kinds: set[str]) -> list[MixtureComponent]:
    if cfg.components:
        return cfg.components
    return [MixtureComponent(kind=k, weight=1.0) for k in sorted(kinds)]


def build_mixture(tokenized: list[dict[str, Any]], cfg: MixingConfig) -> tuple[list[tuple[list[int], str]], dict]:
    """The ordered (tokens, kind) stream of the mixture and per-kind token accounting."""
    comps = _components(cfg, {d["kind"] for d in tokenized})
    if cfg.components:
        budgets = targets(comps, cfg.total_tokens)
    else:  # no recipe mixture: every document once
        budgets = {c.kind: sum(int(d["n_tokens"]) for d in tokenized if d["kind"] == c.kind) for c in comps}
    stream: list[tuple[list[int], str]] = []
    accounting: dict[str, Any] = {}
    for i, comp in enumerate(comps):
        members = [d for d in tokenized if kind_matches(comp.kind, d["kind"])]
        lengths = [int(d["n_tokens"]) for d in members]
        if not members:
            raise StageError(f"mixture component {comp.kind!r} has no documents after curation")
        picks = plan(lengths, budgets[comp.kind], cfg.seed + i)
        for p in picks:
            stream.append((list(members[p.index]["input_ids"][: p.n_tokens]), comp.kind))
        available = sum(lengths)
        accounting[comp.kind] = {"documents": len(members), "available_tokens": available,
                                 "target_tokens": budgets[comp.kind],
                                 "realised_tokens": sum(p.n_tokens for p in picks),
                                 "epochs": round(budgets[comp.kind] / available, 4),
                                 "cut_documents": sum(1 for p in picks if p.n_tokens < lengths[p.index])}
    random.Random(cfg.seed).shuffle(stream)
    total = sum(a["realised_tokens"] for a in accounting.values())
    for a in accounting.values():
        a["share"] = round(a["realised_tokens"] / total, 6) if total else 0.0
    return stream, accounting


def write_shards(rows: list[dict[str, Any]], out_dir: str, shard_rows: int) -> list[str]:
    """Parquet shards of PackedSequence rows."""
    paths = []
    for start in range(0, len(rows), shard_rows):
        path = join(out_dir, f"shard-{start // shard_rows:05d}.parquet")
        write_parquet(rows[start : start + shard_rows], path, PACKED_SEQUENCE)
        paths.append(path)
    return paths


def run_mixing(cfg: MixingConfig, curate_dir: str, out_dir: str) -> dict[str, Any]:
    """Build packed CPT shards and SFT shards from the curated documents and chats."""
    with stage_record(out_dir, "mix", cfg.model_dump(mode="json")) as record:
        docs = read_parquet_rows(join(curate_dir, "documents.parquet"))
        record.inputs = {"documents": join(curate_dir, "documents.parquet"), "n_documents": len(docs)}
        tok = load_tokenizer(cfg.tokenizer)
        tokenized = tokenize_documents(docs, cfg.tokenizer)
        stream, accounting = build_mixture(tokenized, cfg)
        packer = Packer(cfg.seq_len, tok.pad_token_id, cfg.last_partial)
        rows = [r for ids, _ in tqdm(stream, desc="packing", unit="doc", disable=None) for r in packer.add(ids)]
        rows.extend(packer.finish())
        cpt = write_shards(rows, join(out_dir, "cpt"), cfg.shard_rows)
        n_tokens = len(rows) * cfg.seq_len
        counts: dict[str, Any] = {
            "documents_in": len(docs), "tokens_per_kind": accounting, "sequences": len(rows), "seq_len": cfg.seq_len,
            "padding_tokens": packer.n_pad, "padding_fraction": round(packer.n_pad / n_tokens, 6) if n_tokens else 0.0,
            "dropped_tail_tokens": packer.dropped_tokens,
        }
        outputs: dict[str, Any] = {"cpt": cpt}
        if cfg.sft.enabled:
            chats = read_parquet_rows(join(curate_dir, "chats.parquet"))
            sft = sft_rows(tok, chats, cfg.sft.max_length, cfg.sft.overflow, cfg.sft.pack, counts)
            outputs["sft"] = write_shards(sft, join(out_dir, "sft"), cfg.shard_rows)
            counts.update(sft_chats_in=len(chats), sft_rows=len(sft),
                          sft_assistant_tokens=sum(sum(r["loss_mask"]) for r in sft))
        record.counts, record.outputs = counts, outputs
    return counts
