"""Cluster configs pass Ray's own validation; jobs submitted through `mathgpt submit` to a real 2-node Ray."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_launcher_configs_pass_the_autoscaler_schema_and_are_locked_down(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = (ROOT / "cluster" / name).read_text()
    config = yaml.safe_load(raw)
    validate_config(prepare_config(yaml.safe_load(raw)))
    assert config["head_node_type"] == "head"
    assert config["available_node_types"]["head"]["resources"] == {"GPU": 0}
    head = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert all("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"] if "ray start" in c)
    gpu_types = [t for t in config["available_node_types"] if t.startswith("gpu_")]
    assert {"gpu_synthesis", "gpu_training"} <= set(gpu_types)
    assert all(config["available_node_types"][t]["max_workers"] > config["available_node_types"][t]["min_workers"]
               for t in gpu_types)


def test_kuberay_manifests_and_serve_config():
    from ray.serve.schema import ServeDeploySchema

    docs = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "cluster/kuberay").glob("*.yaml")}
    assert {d["kind"] for d in docs.values()} == {"RayCluster", "RayJob", "RayService"}
    for name in ("pipeline", "synthesize", "curate", "mix", "train", "evaluate"):
        assert f"jobs/{name}.py" in docs[f"rayjob-{name}.yaml"]["spec"]["entrypoint"]
        assert (ROOT / "jobs" / f"{name}.py").exists()
    for name in ("raycluster.yaml", "rayservice.yaml"):
        text = (ROOT / "cluster/kuberay" / name).read_text()
        assert "RAY_AUTH_MODE, value: token" in text and "dashboard-host" in text and "LoadBalancer" not in text.split("#")[0]
    serve_cfg = yaml.safe_load((ROOT / "serve/config.yaml").read_text())
    ServeDeploySchema.model_validate(serve_cfg)
    assert serve_cfg["http_options"]["host"] == "127.0.0.1"
    inner = yaml.safe_load(docs["rayservice.yaml"]["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(inner)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real 2-node Ray on this machine (head with the job API on loopback + a second raylet), token auth on.

    Both raylets share one session folder on one host, so only the head takes workers: a second node
    extracting the same working_dir would replace files under a running driver (not an issue on real clusters).
    """
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    head = ["--head", "--port=6391", "--dashboard-host=127.0.0.1", "--dashboard-port=8275", "--num-cpus=4",
            "--include-dashboard=true", "--disable-usage-stats", "--ray-client-server-port=23011",
            "--dashboard-agent-listen-port=23012"]
    subprocess.run([RAY, "start", *head], env=env, check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([RAY, "start", "--address=127.0.0.1:6391", "--num-cpus=2", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=120)
        yield "http://127.0.0.1:8275", env
    finally:
        # stop this cluster only (never the test session's own Ray): every process that names its GCS port
        subprocess.run(["pkill", "-9", "-f", ":6391|_port=6391|port=6391"], capture_output=True)


def _recipe(tmp_path, limit_path):
    recipe = yaml.safe_load((ROOT / "recipes/demo.yaml").read_text())
    recipe.update(name="submitted", run_dir=str(tmp_path / "run"), ray={})
    recipe["synthesis"]["seeds"] = [{"name": "gsm8k", "path": limit_path, "loader": "gsm8k", "limit": 2}]
    recipe["synthesis"]["methods"] = [{"name": "response_diversification", "k": 1, "max_tokens": 8}]
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
def test_submit_a_job_to_a_multinode_cluster_and_read_its_status(cluster, tmp_path):
    address, env = cluster
    recipe = _recipe(tmp_path, "bundled://gsm8k/train.jsonl")
    out = subprocess.run([sys.executable, "-m", "mathgpt.cli", "submit", "synthesize", "--recipe", str(recipe),
                          "--address", address], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "SUCCEEDED" in out.stdout
    job_id = out.stdout.split("job id ")[1].split()[0]
    manifest = json.loads((tmp_path / "run/synthesis/manifest.json").read_text())
    assert manifest["counts"]["response_diversification"]["requested"] == 2
    status = subprocess.run([sys.executable, "-m", "mathgpt.cli", "status", job_id, "--address", address],
                            env=env, capture_output=True, text=True, timeout=120)
    assert "SUCCEEDED" in status.stdout

    bad = _recipe(tmp_path / "bad", "/nonexistent/seeds.jsonl") if (tmp_path / "bad").mkdir() is None else None
    failed = subprocess.run([sys.executable, "-m", "mathgpt.cli", "submit", "synthesize", "--recipe", str(bad),
                             "--address", address], env=env, capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1 and "FAILED" in failed.stdout
    assert "/nonexistent/seeds.jsonl" in failed.stdout  # the log tail says what went wrong
