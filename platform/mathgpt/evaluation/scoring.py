"""Scoring: verdicts per completion, accuracy with a 95% Wilson interval, maj@k and pass@k, breakdowns."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from mathgpt.grading import extract_answer, is_equivalent, majority
from mathgpt.grading.normalize import choice_letter


def verdict(completion: str, reference: str, answer_type: str) -> tuple[str | None, bool]:
    """(extracted answer, correct) for one completion."""
    answer = extract_answer(completion)
    if answer is None:
        return None, False
    if answer_type == "choice":
        return answer, choice_letter(answer) == choice_letter(reference)
    return answer, is_equivalent(answer, reference)


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 0.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # The bounds hold p: in floats, centre - half for 0 of 600 came out at 4e-19, above the accuracy, and the
    # report's error bars (accuracy - bound) went negative, which matplotlib refuses.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def _accuracy(flags: list[bool]) -> dict[str, Any]:
    lo, hi = wilson_interval(sum(flags), len(flags))
    return {"n": len(flags), "correct": sum(flags), "accuracy": sum(flags) / len(flags) if flags else 0.0,
            "ci95": [lo, hi]}


def score_problem(preds: list[dict[str, Any]], answer_type: str) -> dict[str, bool]:
    """Greedy/first-sample, maj@k and pass@k correctness of one problem's predictions."""
    ordered = sorted(preds, key=lambda p: int(p["sample"]))
    first = bool(ordered[0]["correct"])
    if len(ordered) == 1:
        return {"first": first, "maj": first, "pass": first}
    ref = ordered[0]["reference"]
    if answer_type == "choice":
        letters = [choice_letter(p["answer"]) if p["answer"] else None for p in ordered]
        vote = majority(letters)
        maj = vote.answer is not None and vote.answer == choice_letter(ref)
    else:
        vote = majority([p["answer"] for p in ordered])
        maj = vote.answer is not None and is_equivalent(vote.answer, ref)
    return {"first": first, "maj": maj, "pass": any(p["correct"] for p in ordered)}


def summarize(predictions: list[dict[str, Any]], answer_types: dict[str, str]) -> dict[str, Any]:
    """Per-benchmark accuracy (with CI), maj@k/pass@k, and MATH-style breakdowns by level and subject."""
    by_problem: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for p in predictions:
        by_problem[(p["benchmark"], p["problem_id"])].append(p)
    results: dict[str, Any] = {}
    grouped: dict[str, list[tuple[dict[str, Any], dict[str, bool]]]] = defaultdict(list)
    for (bench, _), preds in sorted(by_problem.items()):
        grouped[bench].append((preds[0], score_problem(preds, answer_types[bench])))
    for bench, items in grouped.items():
        k = max(1 + max(int(p["sample"]) for p in by_problem[(bench, it[0]["problem_id"])]) for it in items)
        entry: dict[str, Any] = {**_accuracy([s["first"] for _, s in items]), "samples_per_problem": k}
        if k > 1:
            entry[f"maj@{k}"] = _accuracy([s["maj"] for _, s in items])["accuracy"]
            entry[f"pass@{k}"] = _accuracy([s["pass"] for _, s in items])["accuracy"]
        for field in ("level", "subject"):
            values = defaultdict(list)
            for first, s in items:
                if first.get(field) is not None:
                    values[str(first[field])].append(s["first"])
            if values:
                entry[f"by_{field}"] = {v: _accuracy(f) for v, f in sorted(values.items())}
        results[bench] = entry
    accs = [r["accuracy"] for r in results.values()]
    return {"benchmarks": results, "average": sum(accs) / len(accs) if accs else 0.0}
