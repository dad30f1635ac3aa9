"""The curation job: ingest documents, drop exact and near duplicates, decontaminate, write clean sets.

Scale: documents stream into Parquet chunks (`ingest`), one Ray Data actor pass computes every
document's features (`features`), and the driver decides from those columns alone (ids and hashes,
never text): exact duplicates by sorting keys, near duplicates by vectorised LSH over band keys,
contamination from the flags. Ray Data then writes the kept documents and chats. Ingest and features
are done once per set of inputs, so a re-run after a crash resumes after them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mathgpt.config import CurationConfig
from mathgpt.curation.decontaminate import BenchmarkIndex
from mathgpt.curation.features import FEATURES, FEATURES_VERSION, FeaturesUDF
from mathgpt.curation.ingest import ingest
from mathgpt.curation.minhash import near_duplicate_of
from mathgpt.curation.report import write_reports
from mathgpt.errors import StageError
from mathgpt.benchmarks import available_benchmarks, load_benchmark
from mathgpt.io import (
    clear_dir,
    join,
    list_files,
    parquet_rows,
    parquet_set,
    read_columns,
    require_unique_ids,
    write_jsonl,
)
from mathgpt.manifest import stage_record
from mathgpt.raydata import map_file_to_parquet, read_parquet, write_parquet
from mathgpt.schemas import CHAT, DOCUMENT, RecordSchema

log = logging.getLogger(__name__)


def exact_duplicate_of(ids: pa.Array, keys: pa.Array) -> np.ndarray:
    """For every document, the index of the document it duplicates exactly (the smallest id of its key); itself
    when it is kept."""
    n = len(ids)
    table = pa.table({"key": keys, "id": ids, "i": np.arange(n)}).sort_by([("key", "ascending"), ("id", "ascending")])
    key, order = table.column("key"), table.column("i").to_numpy()
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = pc.not_equal(key.slice(1), key.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    kept = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))] if n else order
    out = np.empty(n, dtype=np.int64)
    out[order] = kept
    return out


def _list_matrix(column: pa.ChunkedArray, rows: int) -> np.ndarray:
    """A list column of equal-length lists as a (rows, length) numpy matrix, without a Python object per row."""
    return pc.list_flatten(column).to_numpy().reshape(rows, -1)


def _signature_loader(files: list[str]) -> Any:
    """Signatures of documents by their global row index across the feature files, one file at a time."""
    sizes = np.cumsum([0] + [parquet_rows([f]) for f in files])

    def load(indices: np.ndarray) -> np.ndarray:
        parts = []
        for k, f in enumerate(files):
            local = indices[(indices >= sizes[k]) & (indices < sizes[k + 1])] - sizes[k]
            if local.size:
                column = read_columns([f], ["minhash"]).column("minhash").take(pa.array(local))
                parts.append(_list_matrix(column, local.size))
        return np.concatenate(parts)

    return load


def _require_unique_ids(ids: pa.Array) -> None:
    """Dedup, decontamination and the mix stage's join all key documents by id."""
    require_unique_ids(ids, "curate", "document", "a source reuses ids; point its `id_field` at a unique field")


def decide(cfg: CurationConfig, feature_files: list[str]) -> pa.Table:
    """(id, source, reason, kept, benchmarks) per document: reason null when kept, benchmarks null when clean."""
    table = read_columns(feature_files, ["id", "source", "exact", "contaminated_by", "snippet"], FEATURES)
    ids = table.column("id")
    _require_unique_ids(ids)
    n = len(ids)
    id_list = ids.to_pylist()
    reason = np.full(n, None, dtype=object)
    kept = np.full(n, None, dtype=object)
    if cfg.exact_dedup and n:
        dup = exact_duplicate_of(ids, table.column("exact"))
        mask = dup != np.arange(n)
        reason[mask] = "exact_duplicate"
        kept[mask] = [id_list[j] for j in dup[mask]]
    if cfg.minhash.enabled and n:
        bands = _list_matrix(read_columns(feature_files, ["bands"]).column("bands"), n)
        rep = near_duplicate_of(id_list, bands, reason == None, _signature_loader(feature_files),  # noqa: E711
                                cfg.minhash.threshold)
        mask = rep != np.arange(n)
        reason[mask] = "near_duplicate"
        kept[mask] = [id_list[j] for j in rep[mask]]
    flags = table.column("contaminated_by").to_numpy(zero_copy_only=False)
    contaminated = (flags != "") & (reason == None)  # noqa: E711  (a duplicate is reported as a duplicate)
    if cfg.decontamination.action == "drop":
        reason[contaminated] = "contaminated"
    decisions = pa.table({"id": ids, "source": table.column("source"), "reason": pa.array(reason, pa.string()),
                          "kept": pa.array(kept, pa.string()),
                          "benchmarks": pa.array(np.where(contaminated, flags, None), pa.string()),
                          "snippet": table.column("snippet")})
    return decisions


def _drop_ids(batch: pa.Table, removed: pa.Array) -> pa.Table:
    return batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=removed)))


def write_kept(src_dir: str, removed: pa.Array, out_dir: str, schema: RecordSchema) -> int:
    """Ray Data: the rows of src_dir whose id was not removed, as Parquet under out_dir; the rows written."""

    clear_dir(out_dir)
    files = list_files(src_dir, (".parquet",))
    if parquet_rows(files):
        write_parquet(read_parquet(files).map_batches(_drop_ids, fn_kwargs={"removed": removed},
                                                      batch_format="pyarrow"), out_dir)
    return parquet_rows(parquet_set(out_dir, schema))


def run_curation(cfg: CurationConfig, synthesis_dir: str | None, out_dir: str) -> dict[str, Any]:
    """Ingest → features (actors) → exact dedup, near dedup, decontamination → kept documents and chats."""
    with stage_record(out_dir, "curate", cfg.model_dump(mode="json")) as record:
        docs_in, chats_in, reports = ingest(cfg, synthesis_dir, join(out_dir, "ingested"), join(out_dir, "rejects"))
        record.inputs = {"sources": reports, "synthesis_dir": synthesis_dir}
        index = None
        if cfg.decontamination.enabled:
            names = available_benchmarks() if cfg.decontamination.benchmarks == "all" else cfg.decontamination.benchmarks
            bench = {n: load_benchmark(n, rejects_dir=join(out_dir, "rejects")) for n in names}
            index = BenchmarkIndex.build(bench, cfg.decontamination.ngram)
        stamp = {"features_version": FEATURES_VERSION, "minhash": cfg.minhash.model_dump(mode="json"), "exact": cfg.exact_dedup,
                 "decontamination": cfg.decontamination.model_dump(mode="json") if index else None,
                 "index": [index.n, int(index.hashes.size), index.names] if index else None}
        features = map_file_to_parquet(docs_in, ["id", "source", "text"], FeaturesUDF,
                                       {"minhash": cfg.minhash.model_dump(), "index": index},
                                       join(out_dir, "features"), stamp, cfg.concurrency, batch_format="pyarrow")
        decisions = decide(cfg, features)
        removed = decisions.filter(pc.is_valid(decisions.column("reason")))
        removed_ids = removed.column("id").combine_chunks()
        n_docs = write_kept(docs_in, removed_ids, join(out_dir, "documents"), DOCUMENT)
        n_chats_in = parquet_rows(list_files(chats_in, (".parquet",)))
        n_chats = write_kept(chats_in, removed_ids, join(out_dir, "chats"), CHAT)
        if n_docs != len(decisions) - len(removed):
            raise StageError(f"curate: wrote {n_docs} documents, expected {len(decisions) - len(removed)}")
        write_jsonl(_removed_records(removed), join(out_dir, "removed.jsonl"))
        contaminated = decisions.filter(pc.is_valid(decisions.column("benchmarks")))
        counts = summarize(decisions, contaminated, n_chats_in, n_chats)
        write_reports(out_dir, counts, _examples(contaminated, cfg.decontamination.max_examples),
                      cfg.decontamination.max_examples)
        record.counts = counts
        record.outputs = {"documents": join(out_dir, "documents"), "chats": join(out_dir, "chats"),
                          "removed": join(out_dir, "removed.jsonl"), "report": join(out_dir, "report.md")}
    return counts


def _removed_records(removed: pa.Table) -> list[dict[str, Any]]:
    out = []
    for row in removed.sort_by("id").to_pylist():
        rec = {"id": row["id"], "reason": row["reason"]}
        if row["reason"] == "contaminated":
            rec["benchmarks"] = row["benchmarks"].split(",")
        else:
            rec["kept"] = row["kept"]
        out.append(rec)
    return out


def _examples(contaminated: pa.Table, max_examples: int) -> list[dict[str, Any]]:
    """Contaminated documents with the start of their text: up to max_examples per benchmark."""
    chosen = []
    per_bench: dict[str, int] = {}
    for row in contaminated.sort_by("id").to_pylist():
        benches = row["benchmarks"].split(",")
        if any(per_bench.get(b, 0) < max_examples for b in benches):
            chosen.append({"id": row["id"], "source": row["source"], "benchmarks": benches, "text": row["snippet"]})
            for b in benches:
                per_bench[b] = per_bench.get(b, 0) + 1
    return chosen


def summarize(decisions: pa.Table, contaminated: pa.Table, n_chats: int, n_kept_chats: int) -> dict[str, Any]:
    """Counts per source: in, out, exact and near duplicates, contaminated; contamination per benchmark."""
    per_source: dict[str, dict[str, int]] = {}
    grouped = pa.table({"source": decisions.column("source"),
                        "reason": pc.fill_null(decisions.column("reason"), "out")}).group_by(
        ["source", "reason"]).aggregate([("source", "count")])
    for src, why, c in zip(*(grouped.column(k).to_pylist() for k in ("source", "reason", "source_count"))):
        entry = per_source.setdefault(src, {"in": 0})
        entry["in"] += c
        entry[why] = c
    reasons = pc.value_counts(pc.drop_null(decisions.column("reason"))).to_pylist()
    by_reason = {r["values"]: r["counts"] for r in reasons}
    per_bench: dict[str, int] = {}
    for flags in contaminated.column("benchmarks").to_pylist():
        for b in flags.split(","):
            per_bench[b] = per_bench.get(b, 0) + 1
    return {"documents_in": len(decisions), "documents_out": len(decisions) - sum(by_reason.values()),
            "chats_in": n_chats, "chats_out": n_kept_chats,
            "exact_duplicates": by_reason.get("exact_duplicate", 0),
            "near_duplicates": by_reason.get("near_duplicate", 0),
            "contaminated": len(contaminated),
            "per_source": dict(sorted(per_source.items())),
            "contaminated_per_benchmark": dict(sorted(per_bench.items()))}
