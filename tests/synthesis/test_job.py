"""Each method end to end on real Ray with the tiny model; resume skips finished shards, never duplicates."""

import pyarrow.parquet as pq

from mathgpt.config import SynthesisConfig
from mathgpt.io import read_json
from mathgpt.schemas import SAMPLE
from mathgpt.synthesis.job import run_synthesis

CFG = {
    "seeds": [{"name": "gsm8k", "path": "bundled://gsm8k/train.jsonl", "loader": "gsm8k", "limit": 4},
              {"name": "math", "path": "bundled://math/test.jsonl", "loader": "math", "limit": 2}],
    "teacher": {"type": "hf", "model": "builtin:tiny", "batch_size": 16},
    "methods": [{"name": "response_diversification", "k": 2, "max_tokens": 16},
                {"name": "query_expansion", "n_new": 1, "m_solutions": 2, "max_tokens": 16},
                {"name": "retrospective_enhancement", "max_tokens": 16},
                {"name": "tutorship_amplification", "attempts": 1, "max_tokens": 16}],
    "shard_size": 3,
}


def _samples(out, method):
    return pq.read_table(sorted((out / method).glob("samples-*.parquet"))).to_pylist() if (out / method).exists() else []


def test_every_method_runs_and_accounts_for_every_request(ray_local, tmp_path):
    summary = run_synthesis(SynthesisConfig.model_validate({**CFG, "shard_size": 6}), str(tmp_path))
    assert set(summary) == {m["name"] for m in CFG["methods"]}
    rd = summary["response_diversification"]
    assert rd["requested"] == 6 * 2 and rd["generated"] == 12
    # every generated solution is either verified or rejected with a reason
    assert rd["verified"] + sum(rd["rejected"].values()) == rd["generated"]
    qe = summary["query_expansion"]
    assert qe["requested"] >= 6
    manifest = read_json(str(tmp_path / "manifest.json"))
    assert manifest["status"] == "complete" and manifest["inputs"]["seeds"]["gsm8k"]["ok"] == 4
    for method in summary:
        for f in (tmp_path / method).glob("samples-*.parquet"):
            assert pq.read_schema(f).names == SAMPLE.names


def test_resume_regenerates_only_missing_shards_byte_identically(ray_local, tmp_path):
    cfg = SynthesisConfig.model_validate({**CFG, "methods": [CFG["methods"][0] | {"temperature": 0.0, "k": 1}]})
    first = run_synthesis(cfg, str(tmp_path))
    method = tmp_path / "response_diversification"
    before = {p.name: p.read_bytes() for p in method.iterdir() if p.name.startswith(("samples", "rejects"))}
    (method / "done-00001.json").unlink()  # as if the driver died before finishing shard 1
    (method / "samples-00001.parquet").unlink()
    second = run_synthesis(cfg, str(tmp_path))
    assert second["response_diversification"]["shards_skipped"] == 1
    after = {p.name: p.read_bytes() for p in method.iterdir() if p.name.startswith(("samples", "rejects"))}
    assert after.keys() == before.keys()
    assert after["rejects-00001.jsonl"] == before["rejects-00001.jsonl"]
    assert first["response_diversification"]["requested"] == second["response_diversification"]["requested"]


def test_shards_share_one_pipeline_per_round_and_a_shared_engine_serves_them_all_with_identical_outputs(
        ray_local, tmp_path, monkeypatch, caplog):
    """Pending shards run in lockstep rounds: one engine pipeline per round for the group instead of one per
    round and shard (each starts engine actors: for vLLM, loading the weights), and the same samples, rejects
    and counts as shard after shard.

    `teacher.shared`: one Serve deployment for the whole job instead of an actor pool per round; per-row seeds
    make every sample and reject identical to the pooled engine's, and the deployment (and the Serve instance
    the job started) is gone afterwards."""
    import logging

    import pytest

    import mathgpt.synthesis.context as context

    built: list[str] = []
    real_generate = context.generate

    def counting_generate(ds, cfg, path):
        built.append(cfg.model)
        return real_generate(ds, cfg, path)

    monkeypatch.setattr(context, "generate", counting_generate)
    methods = [CFG["methods"][0] | {"temperature": 0.7}, CFG["methods"][3]]  # one round; two (student, teacher)

    def run(out, shards_per_pipeline, **teacher):
        built.clear()
        cfg = SynthesisConfig.model_validate({**CFG, "methods": methods, "shard_size": 3,
                                              "shards_per_pipeline": shards_per_pipeline,
                                              "teacher": {**CFG["teacher"], **teacher}})
        summary = run_synthesis(cfg, str(out))
        files = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in out.glob("*/*")
                 if p.name.startswith(("samples", "rejects", "done"))}
        return summary, files, len(built)

    strip = lambda s: {m: {k: v for k, v in c.items() if k != "dir"} for m, c in s.items()}  # noqa: E731
    one_by_one, files_sequential, n_sequential = run(tmp_path / "sequential", 1)
    grouped, files_grouped, n_grouped = run(tmp_path / "grouped", 16)
    assert n_sequential == 2 * 3 and n_grouped == 3  # 2 shards x (1 + 2 rounds) vs (1 + 2 rounds)
    assert files_grouped == files_sequential and len(files_grouped) == 2 * 3 * 2
    assert strip(grouped) == strip(one_by_one)
    with caplog.at_level(logging.INFO, logger="mathgpt.engines.shared"):
        shared, files_shared, _ = run(tmp_path / "shared", 16, shared=True, concurrency=[1, 2])
    deployed = [r.getMessage() for r in caplog.records if "deploying" in r.getMessage()]
    assert len(deployed) == 1  # teacher and student are one config: one deployment for 2 shards x 3 rounds
    assert strip(shared) == strip(grouped) and shared["response_diversification"]["generated"] == 12
    outputs = lambda files: {k: v for k, v in files.items() if "/done" not in k}  # noqa: E731
    assert outputs(files_shared) == outputs(files_grouped) and outputs(files_grouped)
    with pytest.raises(ValueError):  # the job started Serve for its engine and shut it down
        ray_local.get_actor("SERVE_CONTROLLER_ACTOR", namespace="serve")
