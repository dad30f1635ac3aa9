"""Ingest: every source's documents and chats streamed into Parquet chunks, once per set of inputs.

The driver reads records one at a time (bad records fail by file and line, or go to a rejects file)
and writes chunks of at most `chunk_rows` rows, so it never holds a whole corpus. A marker written
last records the inputs and settings; a re-run with the same inputs skips the ingest.
"""

from __future__ import annotations

import re
from typing import Any

from mathgpt.config import CurationConfig, DocumentSource
from mathgpt.datasets import load_problems
from mathgpt.io import (
    FieldError,
    ParquetChunks,
    ReadReport,
    clear_dir,
    exists,
    files_stamp,
    iter_raw,
    iter_records,
    join,
    list_files,
    read_json,
    write_json,
)
from mathgpt.render import solved_chat, solved_document
from mathgpt.schemas import CHAT, DOCUMENT
from mathgpt.render import sample_to_chat, sample_to_document

MARKER = "_COMPLETE.json"


def _corpus_normalizer(src: DocumentSource):
    def normalize(raw: dict[str, Any]) -> dict[str, Any]:
        text, rid = raw.get(src.text_field), raw.get(src.id_field)
        if not isinstance(text, str) or not text.strip():
            raise FieldError(src.text_field, "missing or empty text")
        if rid is None:
            raise FieldError(src.id_field, "missing document id")
        return {"id": f"{src.name}/{rid}", "source": src.name, "kind": src.kind, "text": text, "n_tokens": None}

    return normalize


def _ingest_corpus_file(src: DocumentSource, path: str, prefix: str, docs_dir: str, rejects_path: str,
                        chunk_rows: int) -> dict[str, int]:
    """Stream one file (or, with a limit, the whole source in order) of a corpus into Parquet chunks."""
    docs = ParquetChunks(docs_dir, prefix, DOCUMENT, chunk_rows)
    rep = ReadReport(paths=[])
    for row in iter_records(path, DOCUMENT, _corpus_normalizer(src), src.on_error, rejects_path, src.limit, rep):
        docs.add(row)
    docs.flush()
    return {"ok": rep.n_ok, "rejected": rep.n_rejected}


def ingest_corpus(src: DocumentSource, docs_dir: str, rejects_dir: str, chunk_rows: int,
                  prefix: str | None = None) -> dict[str, Any]:
    """A corpus of several files is ingested by one Ray task per file; one file, or a `limit` (the first N
    documents, in order), on the driver. Rejects go to one file per source file."""
    import ray

    from mathgpt.errors import RecordError

    files = list_files(src.path)
    name = prefix or _safe(src.name)
    if len(files) == 1 or src.limit is not None:
        return _ingest_corpus_file(src, src.path, f"corpus-{name}", docs_dir,
                                   join(rejects_dir, f"corpus-{src.name}.jsonl"), chunk_rows)
    task = ray.remote(num_cpus=1)(_ingest_corpus_file)
    refs = [task.remote(src, f, f"corpus-{name}-f{i:05d}", docs_dir,
                        join(rejects_dir, f"corpus-{src.name}-f{i:05d}.jsonl"), chunk_rows) for i, f in enumerate(files)]
    try:
        parts = ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, RecordError):
            raise err.cause from None  # the file, line and field at fault, not a remote traceback
        raise
    return {"ok": sum(p["ok"] for p in parts), "rejected": sum(p["rejected"] for p in parts), "files": len(files)}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def synthesis_files(synthesis_dir: str | None) -> list[str]:
    """The synthesize stage's sample shards (none when the stage did not run)."""
    if not synthesis_dir or not exists(synthesis_dir):
        return []
    return [f for f in list_files(synthesis_dir, (".parquet",)) if "/samples-" in f]


def ingest(cfg: CurationConfig, synthesis_dir: str | None, out_dir: str, rejects_dir: str,
           chunk_rows: int = 50_000) -> tuple[str, str, dict[str, Any]]:
    """Documents and chats of every source as Parquet chunks under out_dir/{documents,chats}; a read report per source."""
    docs_dir, chats_dir = join(out_dir, "documents"), join(out_dir, "chats")
    sources = [s.path for s in cfg.corpora] + [s.path for s in cfg.problem_solving]
    samples = synthesis_files(synthesis_dir) if cfg.include_synthesis else []  # listed once: storage may be remote
    inputs = [f for p in sources for f in list_files(p)] + samples
    stamp = {"inputs": files_stamp(inputs), "corpora": [s.model_dump(mode="json") for s in cfg.corpora],
             "problem_solving": [s.model_dump(mode="json") for s in cfg.problem_solving],
             "include_synthesis": cfg.include_synthesis, "document_template": cfg.document_template}
    marker = join(out_dir, MARKER)
    if exists(marker) and (done := read_json(marker))["stamp"] == stamp:
        return docs_dir, chats_dir, done["reports"]
    clear_dir(out_dir)
    reports: dict[str, Any] = {}
    for k, src in enumerate(cfg.corpora):  # chunk names carry the source's position: names may repeat
        reports[src.name] = ingest_corpus(src, docs_dir, rejects_dir, chunk_rows, f"{k:03d}-{_safe(src.name)}")
    for k, src in enumerate(cfg.problem_solving):
        problems, rep = load_problems(src, join(rejects_dir, f"problems-{src.name}.jsonl"), strip_calc=True)
        reports[src.name] = {"ok": rep.n_ok, "rejected": rep.n_rejected}
        docs = ParquetChunks(docs_dir, f"problems-{k:03d}-{_safe(src.name)}", DOCUMENT, chunk_rows)
        chats = ParquetChunks(chats_dir, f"problems-{k:03d}-{_safe(src.name)}", CHAT, chunk_rows)
        for p in problems:
            solution = p.get("solution") or ""
            if p.get("answer") and "\\boxed" not in solution:
                solution = f"{solution}\nThe answer is \\boxed{{{p['answer']}}}."
            did, solution = f"ps-{p['id']}", solution.strip()
            docs.add(solved_document(did, src.name, "problem_solving", p["problem"], solution, cfg.document_template))
            chats.add(solved_chat(did, src.name, p["problem"], solution))
        docs.flush()
        chats.flush()
    if samples:
        docs = ParquetChunks(docs_dir, "synthesis", DOCUMENT, chunk_rows)
        chats = ParquetChunks(chats_dir, "synthesis", CHAT, chunk_rows)
        for f in samples:
            for _, sample in iter_raw(f):
                docs.add(sample_to_document(sample, cfg.document_template))
                chats.add(sample_to_chat(sample))
        docs.flush()
        chats.flush()
        reports["synthesis"] = {"ok": docs.n_rows, "rejected": 0}
    if not exists(chats_dir):
        ParquetChunks(chats_dir, "empty", CHAT).flush()  # no source has chats: an empty set, with its schema
    if not exists(docs_dir):
        ParquetChunks(docs_dir, "empty", DOCUMENT).flush()
    write_json({"stamp": stamp, "reports": reports}, marker)
    return docs_dir, chats_dir, reports
