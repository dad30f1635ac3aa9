"""The curation job: ingest documents, drop exact and near duplicates, decontaminate, write clean sets."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np

from mathgpt.config import CurationConfig, DocumentSource
from mathgpt.curation.decontaminate import BenchmarkIndex, ContaminationUDF
from mathgpt.curation.minhash import SignatureUDF, near_duplicate_clusters
from mathgpt.curation.report import write_reports
from mathgpt.curation.text import exact_key
from mathgpt.datasets import load_problems
from mathgpt.errors import StageError
from mathgpt.evaluation.benchmarks import available_benchmarks, load_benchmark
from mathgpt.io import (
    FieldError,
    exists,
    join,
    list_files,
    read_parquet_rows,
    read_records,
    write_jsonl,
    write_parquet,
)
from mathgpt.manifest import stage_record
from mathgpt.raydata import map_with_actors
from mathgpt.render import solved_chat, solved_document
from mathgpt.schemas import CHAT, DOCUMENT
from mathgpt.synthesis.sample import sample_to_chat, sample_to_document

log = logging.getLogger(__name__)


def _corpus_normalizer(src: DocumentSource):
    def normalize(raw: dict[str, Any]) -> dict[str, Any]:
        text, rid = raw.get(src.text_field), raw.get(src.id_field)
        if not isinstance(text, str) or not text.strip():
            raise FieldError(src.text_field, "missing or empty text")
        if rid is None:
            raise FieldError(src.id_field, "missing document id")
        return {"id": f"{src.name}/{rid}", "source": src.name, "kind": src.kind, "text": text, "n_tokens": None}

    return normalize


def ingest(cfg: CurationConfig, synthesis_dir: str | None, out_dir: str) -> tuple[list[dict], list[dict], dict]:
    """All documents and chats of the stage, and a read report per source."""
    docs: list[dict[str, Any]] = []
    chats: list[dict[str, Any]] = []
    reports: dict[str, Any] = {}
    for src in cfg.corpora:
        rows, rep = read_records(src.path, DOCUMENT, _corpus_normalizer(src), src.on_error,
                                 join(out_dir, "rejects", f"corpus-{src.name}.jsonl"), src.limit)
        docs.extend(rows)
        reports[src.name] = {"ok": rep.n_ok, "rejected": rep.n_rejected}
    for src in cfg.problem_solving:
        problems, rep = load_problems(src, join(out_dir, "rejects", f"problems-{src.name}.jsonl"), strip_calc=True)
        reports[src.name] = {"ok": rep.n_ok, "rejected": rep.n_rejected}
        for p in problems:
            solution = p.get("solution") or ""
            if p.get("answer") and "\\boxed" not in solution:
                solution = f"{solution}\nThe answer is \\boxed{{{p['answer']}}}."
            did, solution = f"ps-{p['id']}", solution.strip()
            docs.append(solved_document(did, src.name, "problem_solving", p["problem"], solution, cfg.document_template))
            chats.append(solved_chat(did, src.name, p["problem"], solution))
    if cfg.include_synthesis and synthesis_dir and exists(synthesis_dir):
        samples = _synthesis_samples(synthesis_dir)
        docs.extend(sample_to_document(s, cfg.document_template) for s in samples)
        chats.extend(sample_to_chat(s) for s in samples)
        reports["synthesis"] = {"ok": len(samples), "rejected": 0}
    return docs, chats, reports


def _synthesis_samples(synthesis_dir: str) -> list[dict[str, Any]]:
    files = [f for f in list_files(synthesis_dir, (".parquet",)) if "/samples-" in f]
    return [row for f in files for row in read_parquet_rows(f)]


def _require_unique_ids(docs: list[dict[str, Any]]) -> None:
    """Dedup, decontamination and the mix stage's join all key documents by id."""
    repeated = sorted(i for i, n in Counter(d["id"] for d in docs).items() if n > 1)
    if repeated:
        raise StageError(f"curate: {len(repeated)} document id(s) occur more than once, e.g. {repeated[:5]}: "
                         "a source reuses ids; point its `id_field` at a unique field")


def exact_duplicates(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Removed id → kept id for exact duplicates (the smallest id of each group is kept)."""
    groups: dict[str, list[str]] = {}
    for d in docs:
        groups.setdefault(exact_key(d["text"]), []).append(d["id"])
    removed = {}
    for ids in groups.values():
        keep = min(ids)
        removed.update({i: keep for i in ids if i != keep})
    return removed


def run_curation(cfg: CurationConfig, synthesis_dir: str | None, out_dir: str) -> dict[str, Any]:
    """Ingest → exact dedup → MinHash near-dup → decontaminate; writes documents, chats, reports, manifest."""
    with stage_record(out_dir, "curate", cfg.model_dump(mode="json")) as record:
        docs, chats, reports = ingest(cfg, synthesis_dir, out_dir)
        _require_unique_ids(docs)
        record.inputs = {"sources": reports, "synthesis_dir": synthesis_dir}
        removed: dict[str, dict[str, Any]] = {}
        if cfg.exact_dedup:
            for rid, keep in exact_duplicates(docs).items():
                removed[rid] = {"reason": "exact_duplicate", "kept": keep}
        live = [d for d in docs if d["id"] not in removed]
        if cfg.minhash.enabled and live:
            sig_rows = map_with_actors([{"id": d["id"], "text": d["text"]} for d in live], SignatureUDF,
                                       {"cfg": cfg.minhash.model_dump()})
            ids = [r["id"] for r in sig_rows]
            reps = near_duplicate_clusters(ids, np.stack([np.asarray(r["minhash"]) for r in sig_rows]), cfg.minhash)
            for rid, rep in reps.items():
                if rid != rep:
                    removed[rid] = {"reason": "near_duplicate", "kept": rep}
            live = [d for d in live if d["id"] not in removed]
        contaminated: list[dict[str, Any]] = []
        if cfg.decontamination.enabled and live:
            names = available_benchmarks() if cfg.decontamination.benchmarks == "all" else cfg.decontamination.benchmarks
            bench = {n: load_benchmark(n, rejects_dir=join(out_dir, "rejects")) for n in names}
            index = BenchmarkIndex.build(bench, cfg.decontamination.ngram)
            flagged = map_with_actors([{"id": d["id"], "text": d["text"]} for d in live], ContaminationUDF,
                                      {"index": index})
            by_id = {d["id"]: d for d in live}
            for row in flagged:
                if row["contaminated_by"]:
                    doc = by_id[row["id"]]
                    contaminated.append({"id": doc["id"], "source": doc["source"], "kind": doc["kind"],
                                         "benchmarks": row["contaminated_by"].split(","), "text": doc["text"][:300]})
            if cfg.decontamination.action == "drop":
                for c in contaminated:
                    removed[c["id"]] = {"reason": "contaminated", "benchmarks": c["benchmarks"]}
                live = [d for d in live if d["id"] not in removed]
        kept_chats = [c for c in chats if c["id"] not in removed]
        write_parquet(live, join(out_dir, "documents.parquet"), DOCUMENT)
        write_parquet(kept_chats, join(out_dir, "chats.parquet"), CHAT)
        write_jsonl([{"id": k, **v} for k, v in sorted(removed.items())], join(out_dir, "removed.jsonl"))
        counts = summarize(docs, live, removed, contaminated, len(chats), len(kept_chats))
        write_reports(out_dir, counts, contaminated, cfg.decontamination.max_examples)
        record.counts = counts
        record.outputs = {"documents": join(out_dir, "documents.parquet"), "chats": join(out_dir, "chats.parquet"),
                          "removed": join(out_dir, "removed.jsonl"), "report": join(out_dir, "report.md")}
    return counts


def summarize(docs: list[dict], live: list[dict], removed: dict[str, dict], contaminated: list[dict],
              n_chats: int, n_kept_chats: int) -> dict[str, Any]:
    """Counts per source: in, out, exact and near duplicates, contaminated; contamination per benchmark."""
    source_of = {d["id"]: d["source"] for d in docs}
    per_source: dict[str, Counter] = {}
    for d in docs:
        per_source.setdefault(d["source"], Counter())["in"] += 1
    for d in live:
        per_source[d["source"]]["out"] += 1
    for rid, info in removed.items():
        per_source[source_of[rid]][info["reason"]] += 1
    per_bench: Counter = Counter(b for c in contaminated for b in c["benchmarks"])
    return {"documents_in": len(docs), "documents_out": len(live), "chats_in": n_chats, "chats_out": n_kept_chats,
            "exact_duplicates": sum(1 for v in removed.values() if v["reason"] == "exact_duplicate"),
            "near_duplicates": sum(1 for v in removed.values() if v["reason"] == "near_duplicate"),
            "contaminated": len(contaminated),
            "per_source": {k: dict(v) for k, v in sorted(per_source.items())},
            "contaminated_per_benchmark": dict(sorted(per_bench.items()))}
