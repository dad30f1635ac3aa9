"""Grading throughput: mathgpt.grading vs calling math-verify directly on every pair.

Pairs: bundled MATH test references against paraphrased forms (LaTeX re-spellings) and GSM8K
test answers against paraphrased numbers. Prints checks/s per core for both and the ratio,
plus the slowest single check. Targets: >= 5x on GSM8K-style answers, >= 100 checks/s/core
on MATH-style LaTeX, no check over 5 s.

    python benchmarks/grading.py [--limit N]
"""

from __future__ import annotations

import argparse
import random
import re
import time

from mathgpt.benchmarks import load_benchmark
from mathgpt.grading import is_equivalent


def paraphrase_math(ref: str, rng: random.Random) -> str:
    """An equivalent re-spelling of a MATH answer (or the answer itself when none applies)."""
    forms = [ref.replace("\\frac", "\\dfrac"), ref.replace(" ", ""), f"${ref}$", f"\\left({ref}\\right)"
             if ref.startswith("(") is False and len(ref) < 20 else ref, ref + " "]
    if re.fullmatch(r"-?\d+", ref):
        forms += [f"{ref}.0", f"{int(ref):,}"]
    return rng.choice(forms)


def paraphrase_gsm8k(ref: str, rng: random.Random) -> str:
    """An equivalent spelling of a GSM8K number: $, thousands separators, trailing .00, units."""
    value = float(ref)
    forms = [f"${value:,.2f}", f"{value:,.0f}" if value.is_integer() else ref, f"{ref} dollars", f"{ref}.00"
             if value.is_integer() else ref, ref]
    return rng.choice(forms)


def direct_math_verify(pred: str, ref: str) -> bool:
    """The baseline: math-verify's parse + verify on every pair, as a naive grader would call it."""
    from math_verify import parse, verify

    return bool(verify(parse(f"${ref}$"), parse(f"${pred}$")))


def run(pairs: list[tuple[str, str]], fn) -> tuple[float, float, int]:
    """(checks per second, slowest check in seconds, number judged equivalent)."""
    slowest, ok = 0.0, 0
    start = time.perf_counter()
    for pred, ref in pairs:
        t = time.perf_counter()
        ok += bool(fn(pred, ref))
        slowest = max(slowest, time.perf_counter() - t)
    return len(pairs) / (time.perf_counter() - start), slowest, ok


def main() -> None:
    """Measure both graders on the same pairs in this run and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(0)
    math_pairs = [(paraphrase_math(p["answer"], rng), p["answer"]) for p in load_benchmark("math", args.limit)]
    gsm_pairs = [(paraphrase_gsm8k(p["answer"], rng), p["answer"]) for p in load_benchmark("gsm8k", args.limit)]
    is_equivalent("1", "1")  # start the checker process outside the timing
    is_equivalent("\\frac{1}{2}", "x")
    print(f"{'set':8} {'grader':14} {'checks/s':>10} {'slowest s':>10} {'equivalent':>11}")
    for name, pairs in (("gsm8k", gsm_pairs), ("math", math_pairs)):
        is_equivalent.cache_clear()
        ours = run(pairs, is_equivalent)
        base = run(pairs, direct_math_verify)
        for label, (rate, slow, ok) in (("mathgpt", ours), ("math-verify", base)):
            print(f"{name:8} {label:14} {rate:10.1f} {slow:10.3f} {ok:6d}/{len(pairs)}")
        print(f"{name:8} ratio mathgpt/math-verify: {ours[0] / base[0]:.2f}x")


if __name__ == "__main__":
    main()
