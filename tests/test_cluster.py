"""Cluster configs pass Ray's own validation; jobs submitted through `mathgpt submit` to a real 2-node Ray."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.localcluster import RAY, cluster_env, start_node, stop_cluster

ROOT = Path(__file__).resolve().parent.parent


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


def _kuberay() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "cluster/kuberay").glob("*.yaml")}


def _containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_submit_quotes_every_argument_and_ships_a_recipe_the_cluster_cannot_see(tmp_path, monkeypatch):
    """L6: the entrypoint was joined with spaces (a path with a space or `;` broke or ran remotely), and a recipe
    outside the repository was sent as a laptop path that does not exist on the cluster."""
    import shlex

    from mathgpt.config import load_recipe
    from mathgpt.submit import RECIPE_ENV, job_command

    odd = ROOT / "recipes" / "my run; rm -rf x.yaml"
    entry, env = job_command("train", str(odd), ["--stage", "cpt", "--set", "run_dir=runs/a b"])
    assert shlex.split(entry) == ["python", "jobs/train.py", "--recipe", "recipes/my run; rm -rf x.yaml",
                                  "--stage", "cpt", "--set", "run_dir=runs/a b"] and env == {}
    (tmp_path / "mine.yaml").write_text(f"base: {ROOT / 'recipes/demo.yaml'}\nname: mine\n")
    entry, env = job_command("mix", str(tmp_path / "mine.yaml"))
    assert shlex.split(entry)[2:] == ["--recipe", f"env:{RECIPE_ENV}"] and str(tmp_path) not in entry
    monkeypatch.setenv(RECIPE_ENV, env[RECIPE_ENV])  # what the job's runtime_env gives it on the cluster
    assert load_recipe(f"env:{RECIPE_ENV}") == load_recipe(tmp_path / "mine.yaml")


def test_job_scripts_run_the_submitted_checkout_before_an_installed_package(tmp_path):
    """L6: `jobs/_entry.py` preferred an installed `mathgpt` (this venv has one) over the working_dir's."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "_entry.py").write_text((ROOT / "jobs" / "_entry.py").read_text())
    (tmp_path / "platform" / "mathgpt").mkdir(parents=True)
    (tmp_path / "platform" / "mathgpt" / "__init__.py").write_text("SUBMITTED = True\n")
    code = "import sys; sys.path.insert(0, 'jobs'); import _entry, mathgpt; print(mathgpt.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "platform" / "mathgpt" / "__init__.py")


def test_kuberay_manifests_use_kuberay_token_auth_and_a_reachable_dashboard():
    """H4: token auth through KubeRay's `authOptions` (so the operator and the job submitters hold the token),
    Ray >= 2.52, the dashboard on KubeRay's default bind behind a ClusterIP Service (a loopback bind locks the
    operator out), no hand-set token variables."""
    docs = _kuberay()
    assert {d["kind"] for d in docs.values()} == {"RayCluster", "RayJob", "RayService", "NetworkPolicy"}
    clusters = {"raycluster.yaml": docs["raycluster.yaml"]["spec"],
                "rayservice.yaml": docs["rayservice.yaml"]["spec"]["rayClusterConfig"]}
    for name, spec in clusters.items():
        assert spec["authOptions"] == {"mode": "token"}, name
        assert tuple(map(int, spec["rayVersion"].split("."))) >= (2, 52), name
        head = spec["headGroupSpec"]
        assert head["serviceType"] == "ClusterIP" and "dashboard-host" not in head["rayStartParams"], name
        env = {e["name"] for c in _containers(spec) for e in c.get("env", [])}
        assert not env & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}, f"{name}: token variables are KubeRay's to set"
    for name in ("pipeline", "synthesize", "curate", "mix", "train", "evaluate"):
        job = docs[f"rayjob-{name}.yaml"]["spec"]
        assert f"jobs/{name}.py" in job["entrypoint"] and (ROOT / "jobs" / f"{name}.py").exists()
        assert job["clusterSelector"] == {"ray.io/cluster": docs["raycluster.yaml"]["metadata"]["name"]}
        assert job["submitterPodTemplate"]["metadata"]["labels"] == {"mathgpt.io/ray-client": "true"}
        assert "RAY_AUTH" not in job["runtimeEnvYAML"]


def test_kuberay_network_policy_admits_only_the_operator_and_submitters_to_the_job_api():
    policy = _kuberay()["networkpolicy.yaml"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"ray.io/cluster": "mathgpt", "ray.io/node-type": "head"}
    assert policy["policyTypes"] == ["Ingress"]
    admitted = {}
    for rule in policy["ingress"]:
        ports = tuple(sorted(p["port"] for p in rule.get("ports", []))) or "all"
        admitted[ports] = rule.get("from", "anyone")
    assert admitted[(8000,)] == "anyone"  # Serve: the API key guards it
    assert admitted["all"] == [{"podSelector": {"matchLabels": {"ray.io/cluster": "mathgpt"}}}]
    assert admitted[(8265,)] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-operator"}}},
        {"podSelector": {"matchLabels": {"mathgpt.io/ray-client": "true"}}}]
    assert set(admitted) == {(8000,), "all", (8265,)}


def test_serve_configs_validate_and_bind_through_http_options():
    """H4: Serve's bind address lives in `http_options` (application args have no say in it); the app's args
    are ServingConfig fields, validated as `serve run` would."""
    from ray.serve.schema import ServeDeploySchema

    from mathgpt.config import ServingConfig

    serve_cfg = yaml.safe_load((ROOT / "serve/config.yaml").read_text())
    ServeDeploySchema.model_validate(serve_cfg)
    assert serve_cfg["http_options"]["host"] == "127.0.0.1"
    inner = yaml.safe_load(_kuberay()["rayservice.yaml"]["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(inner)
    assert inner["http_options"] == {"host": "0.0.0.0", "port": 8000, "request_timeout_s": 330}
    for cfg in (inner, serve_cfg):  # Serve's own timeout (408) sits above the app's (504)
        assert all(cfg["http_options"]["request_timeout_s"] > app["args"]["request_timeout_s"]
                   for app in cfg["applications"])
    assert all("host" not in app["args"] for app in inner["applications"])
    for app in inner["applications"] + serve_cfg["applications"]:
        ServingConfig.model_validate(app["args"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real 2-node Ray on this machine (head with the job API on loopback + a second raylet), token auth on.

    Each node has a temp folder of its own, as on a real cluster: nodes sharing one would each extract a job's
    working_dir into the same place, replacing files under the running driver (which imports the submitted
    checkout's `mathgpt`).
    """
    env = cluster_env()
    root = Path(tempfile.mkdtemp(prefix="mg-", dir="/tmp"))  # short: Ray's socket paths live under temp dirs
    head = ["--head", "--port=6391", "--dashboard-host=127.0.0.1", "--dashboard-port=8275", "--num-cpus=4",
            "--include-dashboard=true", "--disable-usage-stats", "--ray-client-server-port=23011",
            "--dashboard-agent-listen-port=23012", f"--temp-dir={root}/head"]
    try:
        start_node(head, env)
        start_node(["--address=127.0.0.1:6391", "--num-cpus=2", "--disable-usage-stats", f"--temp-dir={root}/worker"],
                   env)
        yield "http://127.0.0.1:8275", env
    finally:
        stop_cluster(env)
        shutil.rmtree(root, ignore_errors=True)


def _recipe(tmp_path, limit_path):
    recipe = yaml.safe_load((ROOT / "recipes/demo.yaml").read_text())
    recipe.update(name="submitted", run_dir=str(tmp_path / "run"), ray={})
    recipe["synthesis"]["seeds"] = [{"name": "gsm8k", "path": limit_path, "loader": "gsm8k", "limit": 2}]
    recipe["synthesis"]["methods"] = [{"name": "response_diversification", "k": 1, "max_tokens": 8}]
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_token_auth_cluster_refuses_a_client_without_the_token(cluster):
    """The job API of a cluster started with RAY_AUTH_MODE=token answers 401 to a request without the token
    and 403 to a wrong one, and lists jobs for a client that presents it."""
    import httpx

    address, env = cluster
    assert httpx.get(address + "/api/jobs/", timeout=30).status_code == 401
    assert httpx.get(address + "/api/jobs/", headers={"Authorization": "Bearer not-the-token"},
                     timeout=30).status_code == 403
    out = subprocess.run([RAY, "job", "list", "--address", address], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


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
