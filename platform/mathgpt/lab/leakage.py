"""Proof that no held-out problem reaches a training mixture: a mix stage's shards are decoded and searched.

Decontamination (curation, `benchmarks: all`, the lab's held-out split included) is the guard; this is the
check after the fact, on what training actually reads: the CPT shards decoded as one token stream in shard
order and every SFT row on its own. With `packing: split` a document cut across two rows or two shards is whole
again in that stream; with `packing: best_fit` a document of at most seq_len tokens (every lab problem) is whole
within its row, and a longer one's full pieces are consecutive rows (its shorter last piece may sit elsewhere,
so text across that one cut is not searched). The grid runs it on every cell's mixture and stops when a held-out
problem's text is found.
"""

from __future__ import annotations

from typing import Any

from mathgpt.io import exists, join, list_files, read_columns, read_records


def heldout_questions(path: str = "lab://heldout.jsonl") -> dict[str, str]:
    """id -> problem text of every held-out problem."""
    from mathgpt.paths import resolve_data_path

    rows, _ = read_records(resolve_data_path(path))
    return {str(r["id"]): str(r["problem"]) for r in rows}


def _decoded(files: list[str], tokenizer: Any) -> list[str]:
    ids = read_columns(files, ["input_ids"]).column("input_ids").to_pylist() if files else []
    return [tokenizer.decode(row) for row in ids]


def find_heldout(mix_dir: str, tokenizer_ref: str, questions: dict[str, str]) -> dict[str, Any]:
    """Which held-out problems occur, verbatim, in the CPT stream or in an SFT row of `mix_dir`."""
    from mathgpt.models.metadata import load_tokenizer

    tok = load_tokenizer(tokenizer_ref)
    found: dict[str, list[str]] = {}
    checked: dict[str, int] = {}
    for part in ("cpt", "sft"):
        folder = join(mix_dir, part)
        files = list_files(folder, (".parquet",)) if exists(folder) else []
        rows = _decoded(files, tok)
        text = ("" if part == "cpt" else "\x00").join(rows)  # CPT rows continue each other; SFT rows do not
        checked[f"{part}_rows"] = len(rows)
        hits = [pid for pid, q in questions.items() if q in text]
        if hits:
            found[part] = hits
    return {"mix": mix_dir, "heldout_problems": len(questions), **checked, "found": found}
