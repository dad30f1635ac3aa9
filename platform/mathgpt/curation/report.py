"""Curation reports: JSON counts and a Markdown contamination report with examples."""

from __future__ import annotations

from typing import Any

from mathgpt.io import join, write_json, write_text


def write_reports(out_dir: str, counts: dict[str, Any], contaminated: list[dict[str, Any]], max_examples: int) -> None:
    """report.json (all counts, contamination examples) and report.md (tables a person reads)."""
    examples: dict[str, list[dict[str, Any]]] = {}
    for c in contaminated:
        for b in c["benchmarks"]:
            if len(examples.setdefault(b, [])) < max_examples:
                examples[b].append({"id": c["id"], "source": c["source"], "text": c["text"]})
    write_json({**counts, "contamination_examples": examples}, join(out_dir, "report.json"))
    lines = ["# Curation report", "",
             f"{counts['documents_in']} documents in, {counts['documents_out']} out: "
             f"{counts['exact_duplicates']} exact duplicates, {counts['near_duplicates']} near duplicates, "
             f"{counts['contaminated']} contaminated documents.", "",
             "| source | in | out | exact dup | near dup | contaminated |", "|---|---|---|---|---|---|"]
    for src, c in counts["per_source"].items():
        lines.append(f"| {src} | {c.get('in', 0)} | {c.get('out', 0)} | {c.get('exact_duplicate', 0)} | "
                     f"{c.get('near_duplicate', 0)} | {c.get('contaminated', 0)} |")
    lines += ["", "## Contamination by benchmark", "", "| benchmark | documents |", "|---|---|"]
    lines += [f"| {b} | {n} |" for b, n in counts["contaminated_per_benchmark"].items()] or ["| (none) | 0 |"]
    for b, exs in examples.items():
        lines += ["", f"### {b}: examples", ""]
        lines += [f"- `{e['id']}` ({e['source']}): {e['text'][:200]!r}" for e in exs]
    write_text("\n".join(lines) + "\n", join(out_dir, "report.md"))
