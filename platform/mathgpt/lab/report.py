"""The lab's report: accuracy per difficulty level with 95 % intervals, and a verdict on each of the paper's findings.

Input: for every grid cell (run) and seed, the graded predictions of the held-out `lab` benchmark (rows with
`problem_id`, `level`, `correct`). Intervals come from a two-level bootstrap: each replicate draws the seeds
with replacement, then the problems with replacement (the same problems for every seed of the replicate),
so they cover both the training noise across seeds and the sampling of held-out problems; where the Wilson
interval of the pooled outcomes is wider (always at 0 % or 100 %, where a bootstrap collapses), it is used.

A verdict compares two runs' 95 % intervals of average accuracy: `holds` when the paper's better run's interval
lies entirely above the other's, `reversed` when it lies entirely below, `inconclusive` when they overlap. The
paired difference (same problems, same seeds) and its interval are reported beside it. The gap between CPT
and SFT "grows with difficulty" when the 95 % interval of its least-squares slope over the levels excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Verdict = Literal["holds", "reversed", "inconclusive"]
METHOD_CELLS = {"test+rd": "response diversification", "test+qe": "query expansion",
                "test+re": "retrospective enhancement", "test+ta": "tutorship amplification"}
REPLICATES = 2000


@dataclass
class RunScores:
    """One run's outcomes: correct[seed, problem] (0/1) and each problem's level, problems in a fixed order."""

    correct: np.ndarray
    levels: np.ndarray
    seeds: list[int]


def scores(per_seed: dict[int, list[dict[str, Any]]]) -> RunScores:
    """A run's predictions (seed -> rows) as a seeds x problems matrix; every seed must cover the same problems."""
    seeds = sorted(per_seed)
    if not seeds:
        raise ValueError("a run without any seed's predictions")
    ids = sorted({r["problem_id"] for r in per_seed[seeds[0]]})
    level_of = {r["problem_id"]: int(r["level"] or 0) for r in per_seed[seeds[0]]}  # 0: a benchmark without levels
    matrix = np.zeros((len(seeds), len(ids)))
    for i, seed in enumerate(seeds):
        by_id = {r["problem_id"]: bool(r["correct"]) for r in per_seed[seed]}
        if set(by_id) != set(ids):
            raise ValueError(f"seed {seed} has predictions for {len(by_id)} problems, seed {seeds[0]} for {len(ids)}")
        matrix[i] = [by_id[p] for p in ids]
    return RunScores(matrix, np.array([level_of[p] for p in ids]), seeds)


def _draws(n_seeds: int, n_problems: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_seeds, (REPLICATES, n_seeds)), rng.integers(0, n_problems, (REPLICATES, n_problems)))


def _boot(values: np.ndarray, seed_draw: np.ndarray, problem_draw: np.ndarray) -> np.ndarray:
    """The replicate means of a seeds x problems matrix."""
    return np.array([values[s][:, p].mean() for s, p in zip(seed_draw, problem_draw)])


def _interval(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def _stat(values: np.ndarray, draw_seed: int) -> dict[str, Any]:
    """Accuracy and its 95 % interval: the bootstrap's, widened to the Wilson interval of the pooled outcomes
    where that is wider (a bootstrap of all-wrong or all-right outcomes collapses to a point)."""
    from mathgpt.evaluation.scoring import wilson_interval

    lo, hi = _interval(_boot(values, *_draws(values.shape[0], values.shape[1], seed=draw_seed)))
    w_lo, w_hi = wilson_interval(int(values.sum()), int(values.size))
    return {"accuracy": float(values.mean()), "ci": (min(lo, w_lo), max(hi, w_hi)), "problems": int(values.shape[1])}


def summarize_run(run: RunScores) -> dict[str, Any]:
    """Accuracy with its 95 % interval per level and on average."""
    levels = sorted(set(run.levels.tolist()))
    return {"seeds": run.seeds,
            "levels": {int(level): _stat(run.correct[:, run.levels == level], level) for level in levels},
            "average": _stat(run.correct, 0)}


def compare(better: str, worse: str, runs: dict[str, RunScores], summary: dict[str, Any]) -> dict[str, Any]:
    """The verdict on "`better` beats `worse`" and the numbers behind it."""
    a, b = summary[better]["average"], summary[worse]["average"]
    if a["ci"][0] > b["ci"][1]:
        verdict: Verdict = "holds"
    elif a["ci"][1] < b["ci"][0]:
        verdict = "reversed"
    else:
        verdict = "inconclusive"
    diff = _paired(runs[better], runs[worse])
    return {"claim": f"{better} > {worse}", "verdict": verdict, better: a, worse: b,
            "difference": float(diff.mean()), "difference_ci": _interval(diff)}


def _paired(a: RunScores, b: RunScores) -> np.ndarray:
    """Bootstrap replicates of mean(a) - mean(b) over shared seeds and problems."""
    if a.seeds != b.seeds or a.correct.shape != b.correct.shape:
        raise ValueError("paired comparison needs the same seeds and problems in both runs")
    seed_draw, problem_draw = _draws(len(a.seeds), a.correct.shape[1], seed=1)
    return _boot(a.correct - b.correct, seed_draw, problem_draw)


def gap_slope(cpt: RunScores, sft: RunScores) -> dict[str, Any]:
    """The least-squares slope of (CPT - SFT accuracy) against level, with its bootstrap interval."""
    levels = sorted(set(cpt.levels.tolist()))
    diff = cpt.correct - sft.correct
    seed_draw, problem_draw = _draws(len(cpt.seeds), diff.shape[1], seed=2)

    def slope(values: np.ndarray, columns: np.ndarray) -> float:
        lv = cpt.levels[columns]
        gaps = [values[:, columns[lv == level]].mean() for level in levels if (lv == level).any()]
        xs = [level for level in levels if (lv == level).any()]
        return float(np.polyfit(xs, gaps, 1)[0]) if len(xs) > 1 else 0.0

    all_columns = np.arange(diff.shape[1])
    samples = np.array([slope(diff[s], p) for s, p in zip(seed_draw, problem_draw)])
    lo, hi = _interval(samples)
    verdict: Verdict = "holds" if lo > 0 else "reversed" if hi < 0 else "inconclusive"
    gaps = {int(level): float(diff[:, cpt.levels == level].mean()) for level in levels}
    return {"claim": "the CPT - SFT gap grows with the level", "verdict": verdict,
            "slope_per_level": slope(diff, all_columns), "slope_ci": (lo, hi), "gap_by_level": gaps}


def findings(runs: dict[str, RunScores]) -> dict[str, Any]:
    """Verdicts on the paper's three findings, from the runs the grid has (missing cells are skipped)."""
    summary = {name: summarize_run(run) for name, run in runs.items()}
    out: dict[str, Any] = {"runs": summary, "findings": {}}
    f = out["findings"]
    if {"test", "base"} <= set(runs):
        f["1. problem-solving data in CPT beats the math corpus alone"] = compare("test", "base", runs, summary)
    methods = [m for m in METHOD_CELLS if m in runs]
    if "test" in runs:
        for m in methods:
            f[f"2a. {METHOD_CELLS[m]} data helps"] = compare(m, "test", runs, summary)
    if "test+ta" in runs and len(methods) > 1:
        rivals = [compare("test+ta", m, runs, summary) for m in methods if m != "test+ta"]
        verdicts = {r["verdict"] for r in rivals}
        overall: Verdict = "holds" if verdicts == {"holds"} else "reversed" if "reversed" in verdicts else \
            "inconclusive"
        f["2b. tutorship amplification is the best method"] = {"claim": "test+ta > every other method",
                                                               "verdict": overall, "against": rivals}
    if {"test", "sft"} <= set(runs):
        f["3a. CPT beats SFT on the same problem-solving data"] = compare("test", "sft", runs, summary)
        f["3b. the CPT - SFT gap grows with difficulty"] = gap_slope(runs["test"], runs["sft"])
    return out


def _cell(stat: dict[str, Any]) -> str:
    lo, hi = stat["ci"]
    return f"{100 * stat['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def markdown(result: dict[str, Any], wall_s: float | None = None, notes: tuple[str, ...] = ()) -> str:
    """The report: the accuracy table (percent, 95 % intervals), then each finding's verdict with its numbers;
    `notes` are lines set under the wall time."""
    runs = result["runs"]
    levels = sorted({lv for r in runs.values() for lv in r["levels"]})
    lines = ["# Lab report", ""]
    if wall_s is not None:
        lines += [f"Wall time of the grid: {wall_s / 60:.1f} min.", ""]
    lines += [line for note in notes for line in (note, "")]
    lines += ["Held-out accuracy (%) per difficulty level (the lab: reasoning steps) and on average, with 95 % "
              "bootstrap intervals over seeds and problems.", "",
              "| run | seeds | " + " | ".join(f"L{lv}" if lv else "all" for lv in levels) + " | average |",
              "|---|---|" + "---|" * (len(levels) + 1)]
    for name, r in runs.items():
        cells = [_cell(r["levels"][lv]) if lv in r["levels"] else "" for lv in levels]
        lines.append(f"| {name} | {len(r['seeds'])} | " + " | ".join(cells) + f" | {_cell(r['average'])} |")
    lines += ["", "## Findings", "",
              "A verdict compares the two runs' 95 % intervals: holds (the paper's ordering, intervals apart), "
              "reversed (the opposite ordering, intervals apart), inconclusive (they overlap).", ""]
    for title, f in result["findings"].items():
        lines.append(f"- **{title}**: {f['verdict']}. {_numbers(f)}")
    return "\n".join(lines) + "\n"


def _numbers(f: dict[str, Any]) -> str:
    if "against" in f:
        return "; ".join(f"vs {r['claim'].split(' > ')[1]}: {r['verdict']}" for r in f["against"])
    if "slope_per_level" in f:
        gaps = ", ".join(f"L{lv} {100 * g:+.1f}" for lv, g in f["gap_by_level"].items())
        lo, hi = f["slope_ci"]
        return (f"gap (points) {gaps}; slope {100 * f['slope_per_level']:+.2f} points per level "
                f"[{100 * lo:+.2f}, {100 * hi:+.2f}]")
    a, b = f["claim"].split(" > ")
    lo, hi = f["difference_ci"]
    return (f"{a} {_cell(f[a])} vs {b} {_cell(f[b])}; paired difference {100 * f['difference']:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}]")


def plot(result: dict[str, Any], path: str) -> None:
    """Accuracy against difficulty, one line per run, with the intervals as bands."""
    from mathgpt.evaluation.report import figure

    with figure(path, (7, 4.5), "held-out accuracy (%)") as ax:
        for name, r in result["runs"].items():
            levels = sorted(r["levels"])
            acc = [100 * r["levels"][lv]["accuracy"] for lv in levels]
            lo = [100 * r["levels"][lv]["ci"][0] for lv in levels]
            hi = [100 * r["levels"][lv]["ci"][1] for lv in levels]
            ax.plot(levels, acc, marker="o", label=name)
            ax.fill_between(levels, lo, hi, alpha=0.15)
        ax.set_xlabel("difficulty level (the lab: reasoning steps)")
        ax.set_title("Lab: accuracy against difficulty")
        ax.legend(fontsize="small")
