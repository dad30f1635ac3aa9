"""Evaluation reports: report.json, report.md and PNG plots; and a side-by-side comparison of runs."""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mathgpt.io import join, read_json, write_bytes, write_json, write_text


def markdown_table(rows: dict[str, dict[str, Any]], benchmarks: list[str]) -> str:
    """Rows = runs, columns = benchmarks + average, accuracy in percent."""
    head = "| run | " + " | ".join(benchmarks) + " | average |"
    sep = "|---" * (len(benchmarks) + 2) + "|"
    lines = [head, sep]
    for name, summary in rows.items():
        cells = [f"{100 * summary['benchmarks'][b]['accuracy']:.1f}" if b in summary["benchmarks"] else "-"
                 for b in benchmarks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * summary['average']:.1f} |")
    return "\n".join(lines)


@contextmanager
def figure(path: str, size: tuple[float, float], ylabel: str = "accuracy (%)") -> Iterator[Any]:
    """A matplotlib Axes whose figure is saved as PNG to `path` (local or URI) on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    ax.set_ylabel(ylabel)
    yield ax
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes(buffer.getvalue(), path)


def _plots(summary: dict[str, Any], out_dir: str) -> list[str]:
    results = summary["benchmarks"]
    benches = list(results)
    paths = [join(out_dir, "accuracy_by_benchmark.png")]
    with figure(paths[0], (max(4, 1.2 * len(benches)), 3.5)) as ax:
        accs = [100 * results[b]["accuracy"] for b in benches]
        errs = [[100 * (results[b]["accuracy"] - results[b]["ci95"][0]) for b in benches],
                [100 * (results[b]["ci95"][1] - results[b]["accuracy"]) for b in benches]]
        ax.bar(benches, accs, yerr=errs, capsize=3)
        ax.set_title("accuracy by benchmark (95% CI)")
    levels = results.get("math", {}).get("by_level")
    if levels:
        paths.append(join(out_dir, "math_accuracy_by_level.png"))
        with figure(paths[-1], (4.5, 3.5)) as ax:
            keys = sorted(levels, key=int)
            ax.plot(keys, [100 * levels[k]["accuracy"] for k in keys], marker="o")
            ax.set_xlabel("MATH level")
            ax.set_title("MATH accuracy by level")
    return paths


def write_report(summary: dict[str, Any], meta: dict[str, Any], out_dir: str) -> dict[str, str]:
    """report.json, report.md and plots for one evaluation run."""
    write_json({**meta, **summary}, join(out_dir, "report.json"))
    name = meta.get("name", "run")
    lines = [f"# Evaluation: {name}", "", f"model: `{meta.get('model')}`, mode: {meta.get('mode')}", "",
             markdown_table({name: summary}, list(summary["benchmarks"])), "", "## Per benchmark", "",
             "| benchmark | n | accuracy | 95% CI |", "|---|---|---|---|"]
    for b, r in summary["benchmarks"].items():
        lines.append(f"| {b} | {r['n']} | {100 * r['accuracy']:.1f} | {100 * r['ci95'][0]:.1f}–{100 * r['ci95'][1]:.1f} |")
    levels = summary["benchmarks"].get("math", {}).get("by_level")
    if levels:
        lines += ["", "## MATH by level", "", "| level | n | accuracy |", "|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {100 * v['accuracy']:.1f} |" for k, v in sorted(levels.items())]
    plots = _plots(summary, out_dir)
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    write_text("\n".join(lines) + "\n", join(out_dir, "report.md"))
    return {"json": join(out_dir, "report.json"), "markdown": join(out_dir, "report.md"), "plots": plots}


def compare_runs(run_dirs: list[str], out_dir: str) -> str:
    """One table (and plot) of several evaluation runs side by side, like the paper's tables."""
    rows: dict[str, dict[str, Any]] = {}
    benches: list[str] = []
    for run in run_dirs:
        report_path = run if run.endswith(".json") else join(run, "report.json")
        report = read_json(report_path)
        rows[report.get("name") or run] = report
        benches += [b for b in report["benchmarks"] if b not in benches]
    table = markdown_table(rows, benches)
    write_text("# Comparison\n\n" + table + "\n", join(out_dir, "comparison.md"))
    with figure(join(out_dir, "comparison.png"), (max(5, 1.3 * len(benches)), 3.5)) as ax:
        width = 0.8 / max(1, len(rows))
        for i, (name, rep) in enumerate(rows.items()):
            xs = [j + i * width for j in range(len(benches))]
            ax.bar(xs, [100 * rep["benchmarks"].get(b, {}).get("accuracy", 0) for b in benches], width, label=name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(benches))], benches)
        ax.legend()
    return table
