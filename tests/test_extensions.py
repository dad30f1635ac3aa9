"""The extension points take one file: a toy synthesis method (tests/extensions/shortest_solution.py) registered by
name runs through the unchanged synthesis job, and a toy benchmark added as one registry entry plus its data
file is evaluated, offered to decontamination and listed."""

import json

import pyarrow.parquet as pq
import pytest

from mathgpt import benchmarks, methods
from mathgpt.config import EvaluationConfig, SynthesisConfig, parse_recipe
from mathgpt.errors import ConfigError
from mathgpt.labworld.world import WorldConfig, write_world

WORLD = WorldConfig(train_per_level=2, heldout_per_level=1, corpus_documents=2)


@pytest.fixture
def registry(monkeypatch):
    """The method registry and the benchmark registry as they are, restored after the test."""
    monkeypatch.setattr(methods, "_REGISTERED", dict(methods._REGISTERED))
    monkeypatch.setattr(benchmarks, "REGISTRY", dict(benchmarks.REGISTRY))


def test_a_method_module_registered_by_name_runs_through_the_synthesis_job(registry, ray_local, tmp_path):
    with pytest.raises(ConfigError, match="unknown synthesis method 'shortest_solution'"):
        parse_recipe({"name": "x", "synthesis": {"methods": [{"name": "shortest_solution"}]}})
    assert methods.register_method("tests.extensions.shortest_solution") == "shortest_solution"
    with pytest.raises(ConfigError, match=r"shortest_solution.k: Input should be greater than or equal to 1"):
        parse_recipe({"name": "x", "synthesis": {"methods": [{"name": "shortest_solution", "k": 0}]}})
    with pytest.raises(ConfigError, match="needs METHOD, CONFIG, run"):
        methods.register_method("tests.extensions")

    from mathgpt.synthesis.job import run_synthesis

    write_world(WORLD, str(tmp_path / "world"))
    cfg = SynthesisConfig.model_validate({
        "seeds": [{"name": "lab", "path": str(tmp_path / "world/train.jsonl"), "loader": "math"}],
        "teacher": {"type": "lab", "model": "lab:student", "error_rate": 0.3},
        "methods": [{"name": "shortest_solution", "k": 3, "max_tokens": 300}], "shard_size": 6})
    assert type(cfg.methods[0]).__name__ == "ShortestSolution"
    summary = run_synthesis(cfg, str(tmp_path / "out"))["shortest_solution"]
    samples = pq.read_table(sorted((tmp_path / "out/shortest_solution").glob("samples-*.parquet"))).to_pylist()
    rejects = [json.loads(line) for f in sorted((tmp_path / "out/shortest_solution").glob("rejects-*.jsonl"))
               for line in f.read_text().splitlines()]
    problems = 6 * WORLD.train_per_level
    assert 0 < len(samples) <= problems and all(s["method"] == "shortest_solution" for s in samples)
    assert len(samples) + len(rejects) == 3 * problems  # every attempt is a sample or a counted reject
    assert {r["reason"] for r in rejects} <= {"wrong_answer", "longer_than_kept"}
    assert summary["rejected"].get("wrong_answer", 0) > 0  # the student at 30 % per step slips sometimes


def test_a_benchmark_is_one_registry_entry_plus_its_data_file(registry, ray_local, tiny_model, tmp_path):
    from mathgpt.evaluation.job import run_evaluation

    rows = [{"id": f"toy-{i}", "problem": f"Sam has {i} apples and buys {i + 2} more. How many apples now?",
             "answer": str(2 * i + 2)} for i in range(3)]  # the platform's Problem schema: loader `problem`
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    benchmarks.REGISTRY["toy"] = benchmarks.Benchmark("toy", str(data), "problem", "number", "gsm8k", 16)

    assert "toy" in benchmarks.available_benchmarks()  # so curation's decontamination (`all`) checks it
    assert [p["answer"] for p in benchmarks.load_benchmark("toy")] == ["2", "4", "6"]
    cfg = EvaluationConfig.model_validate({"benchmarks": [{"name": "toy", "max_tokens": 8}]})
    summary = run_evaluation(cfg, tiny_model, str(tmp_path / "eval"), "tiny", "fewshot")
    assert summary["benchmarks"]["toy"]["n"] == 3 and summary["errors"] == 0
