"""Packed CPT shards at cluster scale; the driver never holds the text or the tokens.

1. Documents stream through tokenizer actors into `tokenized/` Parquet (id, kind, n_tokens, input_ids).
2. The mixture is planned on the driver from (id, kind, n_tokens) alone (`mathgpt.mixing.budget`), and the
   picked token stream is cut into groups of about shard_rows x seq_len tokens. With `packing: split` a
   group holds exactly that many tokens, and a document that crosses a group boundary is split there, just
   as packing splits a document across two rows; with `packing: best_fit` (the default) a document belongs
   wholly to the group it starts in.
3. Ray Data joins the plan with the tokens and packs each group into one shard in its own task. split: every
   group starts on a row boundary, so the shards are identical to packing the whole stream in one process.
   best_fit: each group's documents are placed best-fit decreasing (`pack.best_fit_rows`), none of at most
   seq_len tokens across two rows. A shard is written atomically and counts as done; a re-run with the same
   plan skips it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mathgpt.config import MixingConfig
from mathgpt.errors import StageError
from mathgpt.io import clear_dir, exists, join, read_columns, read_json, require_unique_ids, write_json, write_parquet
from mathgpt.mixing.budget import mixture_picks
from mathgpt.mixing.pack import Packer, best_fit_rows
from mathgpt.raydata import map_file_to_parquet, read_parquet
from mathgpt.schemas import PACKED_SEQUENCE

log = logging.getLogger(__name__)
PLAN = "_plan.json"


def shard_path(cpt_dir: str, group: int) -> str:
    return join(cpt_dir, f"shard-{group:05d}.parquet")


def tokenize_to_parquet(documents: str, tokenizer: str, out_dir: str,
                        concurrency: int | tuple[int, int] = (1, 4)) -> list[str]:
    """Tokenize every document into Parquet files under out_dir (id, kind, n_tokens, input_ids), once."""
    from mathgpt.mixing.tokenize import TokenizeUDF

    return map_file_to_parquet(documents, ["id", "kind", "text"], TokenizeUDF, {"tokenizer": tokenizer}, out_dir,
                               {"tokenizer": tokenizer}, concurrency)


def plan_segments(index: pa.Table, cfg: MixingConfig) -> tuple[pa.Table, dict[str, Any], int]:
    """The mixture as (id, group, order, start, stop) token segments, its per-kind accounting, and its groups.

    Vectorised: a pick that crosses group boundaries becomes one segment per group it touches.
    """
    rows, used, accounting = mixture_picks(index.column("kind"), index.column("n_tokens").to_numpy(), cfg)
    group_tokens = cfg.shard_rows * cfg.seq_len
    offset = np.cumsum(used) - used  # where each pick starts in the token stream
    first = offset // group_tokens
    if cfg.packing == "best_fit":  # a pick stays whole, in the group it starts in
        n_groups = int(first[-1]) + 1 if used.size else 0
        table = pa.table({"id": index.column("id").take(pa.array(rows)), "group": pa.array(first, pa.int64()),
                          "order": pa.array(np.arange(used.size), pa.int64()),
                          "start": pa.array(np.zeros(used.size), pa.int64()), "stop": pa.array(used, pa.int64())})
        return table, accounting, n_groups
    n_seg = (offset + used - 1) // group_tokens - first + 1
    pick = np.repeat(np.arange(used.size), n_seg)
    group = first[pick] + (np.arange(pick.size) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg))
    start = np.maximum(offset[pick], group * group_tokens) - offset[pick]
    stop = np.minimum(offset[pick] + used[pick], (group + 1) * group_tokens) - offset[pick]
    table = pa.table({"id": index.column("id").take(pa.array(rows[pick])), "group": pa.array(group, pa.int64()),
                      "order": pa.array(np.arange(pick.size), pa.int64()), "start": pa.array(start, pa.int64()),
                      "stop": pa.array(stop, pa.int64())})
    return table, accounting, math.ceil(int(used.sum()) / group_tokens)


def pack_group(batch: dict[str, np.ndarray], cpt_dir: str, seq_len: int, pad_id: int, last_partial: str,
               last_group: int, packing: str = "split") -> dict[str, np.ndarray]:
    """`map_groups` function: pack one group's segments in plan order and write its shard."""
    group = int(batch["group"][0])
    docs = [np.asarray(batch["input_ids"][i][int(batch["start"][i]):int(batch["stop"][i])]).tolist()
            for i in np.argsort(batch["order"], kind="stable")]
    tokens = sum(len(d) for d in docs)
    if packing == "best_fit":
        rows, n_pad = best_fit_rows(docs, seq_len, pad_id)
        dropped = 0
    else:
        packer = Packer(seq_len, pad_id, last_partial)
        rows = [row for doc in docs for row in packer.add(doc)]
        if group == last_group:
            rows.extend(packer.finish())
        elif packer.ids:
            raise StageError(f"pack group {group}: {len(packer.ids)} tokens left over a row boundary (plan bug)")
        n_pad, dropped = packer.n_pad, packer.dropped_tokens
    write_parquet(rows, shard_path(cpt_dir, group), PACKED_SEQUENCE)
    return {"group": np.array([group]), "rows": np.array([len(rows)]), "tokens": np.array([tokens]),
            "padding": np.array([n_pad]), "dropped": np.array([dropped])}


def documents_cut(plan: pa.Table, cfg: MixingConfig) -> int:
    """Picked documents that the packing cuts across two or more rows (their later part trains without the
    beginning: attention is per document). best_fit cuts only documents longer than seq_len."""
    start = plan.column("start").to_numpy()
    n = plan.column("stop").to_numpy() - start
    if cfg.packing == "best_fit":
        return int((n > cfg.seq_len).sum())
    offset = np.cumsum(n) - n  # split: rows are the stream cut every seq_len tokens
    crosses = (offset // cfg.seq_len != (offset + n - 1) // cfg.seq_len) | (start > 0)
    pick = np.cumsum(start == 0) - 1
    return int(np.unique(pick[crosses]).size)


def build_cpt_shards(cfg: MixingConfig, tokenized: list[str], cpt_dir: str,
                     pad_id: int) -> tuple[list[str], dict[str, Any]]:
    """Plan the mixture, then join + group + pack the groups that have no shard yet; returns shards and counts."""
    index = read_columns(tokenized, ["id", "kind", "n_tokens"]).sort_by("id")  # the plan must not depend on file order
    # the plan joins tokens by document id: two documents with one id would both be packed for each pick
    require_unique_ids(index.column("id"), "mix", "curated document",
                       "ids must be unique (curation keeps them so unless sources reuse ids)")
    plan, accounting, n_groups = plan_segments(index, cfg)
    stamp = {"fingerprint": _fingerprint(plan, cfg, pad_id), "groups": n_groups}
    if not exists(join(cpt_dir, PLAN)) or read_json(join(cpt_dir, PLAN)) != stamp:
        clear_dir(cpt_dir)  # no plan yet, or shards of a different plan: start the shards over
        write_json(stamp, join(cpt_dir, PLAN))
    todo = [g for g in range(n_groups) if not exists(shard_path(cpt_dir, g))]
    log.info("mix: %d of %d CPT shards to pack (%d already done)", len(todo), n_groups, n_groups - len(todo))
    if todo:
        todo_plan = plan.filter(pc.is_in(plan.column("group"), pa.array(todo, pa.int64())))
        n_parts = shuffle_partitions(sum(_planned_tokens(todo_plan).values()), len(todo))
        summaries = pack_planned_groups(todo_plan, read_parquet(tokenized, columns=["id", "input_ids"]), n_parts,
                                        pack_group, cpt_dir=cpt_dir, seq_len=cfg.seq_len, pad_id=pad_id,
                                        last_partial=cfg.last_partial, last_group=n_groups - 1,
                                        packing=cfg.packing)
        _check_packed(summaries, todo_plan, todo)
    shards = [shard_path(cpt_dir, g) for g in range(n_groups)]
    planned = int(pc.sum(pc.subtract(plan.column("stop"), plan.column("start"))).as_py() or 0)
    rows, padding, dropped = _shard_counts(shards, cfg.seq_len, planned)
    counts = {"documents_in": index.num_rows, "tokens_per_kind": accounting, "sequences": rows,
              "seq_len": cfg.seq_len, "shards": n_groups, "shards_packed_this_run": len(todo), "padding_tokens": padding,
              "padding_fraction": round(padding / (rows * cfg.seq_len), 6) if rows else 0.0,
              "dropped_tail_tokens": dropped, "packing": cfg.packing, "documents_cut": documents_cut(plan, cfg)}
    return shards, counts


def pack_planned_groups(plan: pa.Table, rows: Any, n_parts: int, fn: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Join a plan (id, group, order, ...) with the rows it names (a Ray Dataset keyed by id), and run `fn` on
    each group's rows in its own task (`map_groups`, numpy batches, `kwargs` passed on); returns its summaries."""
    import ray.data

    return (ray.data.from_arrow(plan).join(rows, join_type="inner", num_partitions=n_parts, on=("id",))
            .groupby("group", num_partitions=n_parts)
            .map_groups(fn, batch_format="numpy", fn_kwargs=kwargs)
            .take_all())


def shuffle_partitions(tokens: int, groups: int) -> int:
    """Shuffle partitions: one per ~16M tokens (~64 MB of int32), at most one per group and two per CPU."""
    import ray

    return max(1, min(groups, -(-tokens // 16_000_000), 2 * int(ray.cluster_resources().get("CPU", 1))))


def _planned_tokens(plan: pa.Table) -> dict[int, int]:
    """Tokens planned per group."""
    per = pc.subtract(plan.column("stop"), plan.column("start"))
    grouped = pa.table({"group": plan.column("group"), "n": per}).group_by("group").aggregate([("n", "sum")])
    return dict(zip(grouped.column("group").to_pylist(), grouped.column("n_sum").to_pylist()))


def _check_packed(summaries: list[dict[str, Any]], plan: pa.Table, todo: list[int]) -> None:
    """Every planned group was packed with every planned token: a planned id without tokens fails here."""
    got = {int(s["group"]): int(s["tokens"]) for s in summaries}
    want = _planned_tokens(plan)
    wrong = [g for g in todo if got.get(g) != want.get(g)]
    if wrong:
        raise StageError(f"mix: groups {wrong[:10]} packed {[got.get(g) for g in wrong[:10]]} tokens, "
                         f"planned {[want.get(g) for g in wrong[:10]]} (a planned document has no tokens?)")


def _shard_counts(shards: list[str], seq_len: int, planned: int) -> tuple[int, int, int]:
    """Rows, padding and dropped tail tokens over all shards, read back so a resumed run reports the whole
    output: CPT rows mask only padding, so real tokens are the mask's sum."""
    masks = read_columns(shards, ["loss_mask"]).column("loss_mask")
    real = int(pc.sum(pc.list_flatten(masks)).as_py() or 0)
    return len(masks), len(masks) * seq_len - real, planned - real


def _fingerprint(plan: pa.Table, cfg: MixingConfig, pad_id: int) -> str:
    digest = hashlib.sha256(f"{cfg.seq_len}|{cfg.shard_rows}|{cfg.last_partial}|{pad_id}|{cfg.packing}".encode())
    for col in plan.columns:
        for chunk in col.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    return digest.hexdigest()
