"""Audit M4: finished work made with other settings is refused, naming the changed key, never mixed in."""

import json
from pathlib import Path

import pytest

from mathgpt.config import parse_recipe
from mathgpt.errors import StageError
from mathgpt.fingerprint import changed_keys, mismatch, settings
from mathgpt.pipeline import run_pipeline


def _recipe(tmp_path: Path, shard_size: int = 6, batch_size: int = 16):
    return parse_recipe({
        "name": "m4", "run_dir": str(tmp_path / "run"), "stages": ["synthesize"],
        "synthesis": {"seeds": [{"name": "lab", "path": "lab://train.jsonl", "loader": "math", "limit": 12}],
                      "teacher": {"type": "lab", "model": "lab:teacher", "batch_size": batch_size},
                      "methods": [{"name": "response_diversification", "k": 2, "max_tokens": 300}],
                      "shard_size": shard_size}})


def test_a_rerun_with_another_shard_size_refuses_and_names_the_key(ray_local, tmp_path):
    run = tmp_path / "run"
    run_pipeline(_recipe(tmp_path))
    manifest = json.loads((run / "synthesis/manifest.json").read_text())
    assert manifest["settings"]["synthesis"]["shard_size"] == 6 and len(manifest["fingerprint"]) == 64
    assert run_pipeline(_recipe(tmp_path, batch_size=4))["synthesize"]["status"] == "skipped (complete)"
    with pytest.raises(StageError, match=r"synthesis\.shard_size: 6 -> 12.*--from synthesize"):
        run_pipeline(_recipe(tmp_path, shard_size=12))
    # killed before the stage finished: only the shards' done markers remain, and they refuse too
    (run / "synthesis/manifest.json").unlink()
    with pytest.raises(StageError, match=r"response_diversification shard 0 .*synthesis\.shard_size: 6 -> 12"):
        run_pipeline(_recipe(tmp_path, shard_size=12))
    samples_before = sorted(p.name for p in (run / "synthesis/response_diversification").iterdir())
    run_pipeline(_recipe(tmp_path, batch_size=4))  # a speed-only knob: the finished shards are reused as they are
    assert sorted(p.name for p in (run / "synthesis/response_diversification").iterdir()) == samples_before
    timings = run_pipeline(_recipe(tmp_path, shard_size=12), from_stage="synthesize")
    assert timings["synthesize"]["status"] == "ran"
    assert json.loads((run / "synthesis/manifest.json").read_text())["counts"]["response_diversification"][
        "shards"] == 1
    assert len(list((run / "recipes").glob("*.yaml"))) == 6  # every attempt's recipe is kept


def test_changed_inputs_and_nested_keys_are_named():
    had = {"mixing": settings({"seq_len": 512, "components": [{"kind": "general", "weight": 0.5}],
                               "concurrency": [1, 4], "max_concurrent_batches": 8}), "inputs": {"curate": "aaa"}}
    want = {"mixing": settings({"seq_len": 512, "components": [{"kind": "general", "weight": 0.6}],
                                "concurrency": [2, 8]}), "inputs": {"curate": "bbb"}}  # a knob added since: absent
    assert changed_keys(had, want) == ['inputs.curate: "aaa" -> "bbb"',
                                       "mixing.components[0].weight: 0.5 -> 0.6"]
    problem = mismatch({"settings": had}, want)
    assert problem.startswith('input curate: "aaa" -> "bbb"') and "concurrency" not in problem
    assert mismatch({"settings": had}, had) is None and mismatch({}, want) is None
