import pytest

from mathgpt.config import ProblemSource
from mathgpt.datasets import load_problems, strip_calculator_annotations
from mathgpt.benchmarks import REGISTRY, available_benchmarks, load_benchmark


def test_gsm8k_answer_after_hashes_and_calculator_annotations():
    src = ProblemSource(name="gsm8k", path="bundled://gsm8k/train.jsonl", loader="gsm8k", limit=3)
    raw, _ = load_problems(src)
    assert raw[0]["answer"] == "72" and "<<" in raw[0]["solution"]
    clean, _ = load_problems(src, strip_calc=True)
    assert "<<" not in clean[0]["solution"] and "48/2 = 24" in clean[0]["solution"]
    assert strip_calculator_annotations("a <<2*3=6>>6 b") == "a 6 b"


def test_math_has_levels_and_subjects():
    probs = load_benchmark("math", limit=50)
    assert all(isinstance(p["level"], int) and 1 <= p["level"] <= 5 for p in probs)
    assert all(p["subject"] and p["answer"] for p in probs)


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "math500"))
def test_every_bundled_benchmark_loads(name, tmp_path):
    assert name in available_benchmarks()
    probs = load_benchmark(name, rejects_dir=str(tmp_path))
    assert len(probs) >= 30
    assert all(p["problem"] and p["answer"] for p in probs)
    assert len({p["id"] for p in probs}) == len(probs)


def test_rows_without_answers_are_quarantined_and_counted(tmp_path):
    probs = load_benchmark("gaokao2023en", rejects_dir=str(tmp_path))
    rejects = (tmp_path / "benchmark-gaokao2023en.jsonl").read_text().splitlines()
    assert len(probs) + len(rejects) == 385 and len(rejects) == 2
