"""The demo recipe cut down to seconds per stage, for end-to-end tests that run every stage."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def small_demo(run_dir: str, serving_port: int) -> dict:
    """recipes/demo.yaml with a few problems, tokens and steps per stage: every stage still runs for real."""
    data = yaml.safe_load((ROOT / "recipes/demo.yaml").read_text())
    data["name"] = "e2e"
    data["run_dir"] = run_dir
    data["ray"] = {"num_cpus": 4}
    data["synthesis"]["seeds"][0]["limit"] = 4
    data["synthesis"]["shard_size"] = 2
    for m in data["synthesis"]["methods"]:
        m["max_tokens"] = 12
    data["curation"]["corpora"] = [{**c, "limit": 20} for c in data["curation"]["corpora"]]
    data["curation"]["problem_solving"] = [{**p, "limit": 60} for p in data["curation"]["problem_solving"]]
    data["mixing"]["total_tokens"] = 20000
    data["mixing"]["seq_len"] = 256
    data["mixing"]["sft"]["max_length"] = 256
    for stage in ("cpt", "sft"):
        data["training"][stage].update(max_steps=3, checkpoint_every=2, global_batch_tokens=1024)
    data["evaluation"]["benchmarks"] = [{"name": "gsm8k", "limit": 2, "max_tokens": 8},
                                        {"name": "math", "limit": 2, "max_tokens": 8},
                                        {"name": "lab", "limit_per_level": 1, "max_tokens": 8}]
    data["serving"].update(port=serving_port, max_tokens_cap=16)
    return data


def write_small_demo(path: Path, run_dir: str, serving_port: int, **sets) -> Path:
    """small_demo() with dotted overrides (`training.cpt.placement_strategy=...`), written as YAML to PATH."""
    data = small_demo(run_dir, serving_port)
    for key, value in sets.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(yaml.safe_dump(data))
    return path
