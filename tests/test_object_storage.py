"""Run directories on object storage: folders published marker-last, fetched into a per-node cache, and the
run's small files (metrics, API key, stage dirs) read and written through pyarrow.fs on a real S3 server."""

from pathlib import Path

import pytest

from mathgpt.dirs import cached_copy, delete_dir, publish_dir, published, tree
from mathgpt.errors import ConfigError, StageError
from mathgpt.io import exists, filesystem, join, write_json, write_text
from tests.objstore import new_bucket

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["s3", "gs"])
def bucket(request, s3, gcs):
    return f"{request.param}://{new_bucket(request.param)}"


def _folder(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return str(path)


def test_a_published_folder_is_complete_and_fetched_once_per_cache(bucket, tmp_path):
    src = _folder(tmp_path / "model", {"config.json": "{}", "weights/a.bin": "x" * 100})
    dest = join(bucket, "run/train_cpt/model")
    assert "no completion marker" in published(dest)
    publish_dir(src, dest)
    assert published(dest) is None and set(tree(dest)) == {"config.json", "weights/a.bin", "_MATHGPT_COMPLETE.json"}
    local = cached_copy(dest, tmp_path / "cache")
    assert (tmp_path / "cache") in Path(local).parents
    assert open(f"{local}/weights/a.bin").read() == "x" * 100
    assert cached_copy(dest, tmp_path / "cache") == local  # already there: no second download

    write_text("x" * 10, join(dest, "weights/a.bin"))  # cut short after the marker was written
    assert "truncated file weights/a.bin (10 of 100 bytes)" in published(dest)
    with pytest.raises(FileNotFoundError, match="not a complete model folder"):
        cached_copy(dest, tmp_path / "other-node-cache")
    publish_dir(src, dest)  # re-published: replaces what was there, and a new marker means a new copy
    (tmp_path / "model" / "config.json").write_text('{"v": 2}')
    publish_dir(src, dest)
    again = cached_copy(dest, tmp_path / "cache")
    assert again != local and open(f"{again}/config.json").read() == '{"v": 2}'


def test_a_write_that_fails_leaves_nothing_behind_locally_or_in_the_bucket(bucket, tmp_path):
    """L7: a local write that raised left its temp file; on S3, closing the stream uploaded the partial content."""
    from mathgpt.io import _atomic_write

    def half(out):
        out.write(b"half of it")
        raise OSError("disk full")

    for path in (str(tmp_path / "d" / "marker.json"), join(bucket, "run/marker.json")):
        with pytest.raises(OSError, match="disk full"):
            _atomic_write(path, half)
        assert not exists(path)
    assert list((tmp_path / "d").iterdir()) == []
    write_text("whole", join(bucket, "run/marker.json"))
    assert exists(join(bucket, "run/marker.json"))


def test_local_publish_replaces_the_folder_and_writes_the_marker(tmp_path):
    src = _folder(tmp_path / "src", {"a.txt": "new"})
    dest = _folder(tmp_path / "dest", {"stale.txt": "old"})
    publish_dir(src, dest)
    assert published(dest) is None and sorted(tree(dest)) == ["_MATHGPT_COMPLETE.json", "a.txt"]


def test_a_stage_model_is_used_only_once_published(bucket, tmp_path, monkeypatch):
    from mathgpt.config import load_recipe
    from mathgpt.models import resolve_model
    from mathgpt.pipeline import model_for

    recipe = load_recipe(ROOT / "recipes/demo.yaml", {"run_dir": f"{bucket}/run"})
    export = join(bucket, "run/train_cpt/model")
    write_json({}, join(export, "config.json"))  # a half-written export: no marker
    with pytest.raises(StageError, match="not a complete export .* run the train_cpt stage first"):
        model_for(recipe, "stage:train_cpt")
    publish_dir(_folder(tmp_path / "m", {"config.json": "{}"}), export)
    assert model_for(recipe, "stage:train_cpt") == export  # the URI: each node fetches it where it loads it
    monkeypatch.setenv("MATHGPT_CACHE_DIR", str(tmp_path / "node-cache"))
    assert resolve_model(export).startswith(str(tmp_path / "node-cache"))
    with pytest.raises(ConfigError, match="not a complete model folder"):
        resolve_model(join(bucket, "nothing/here"))


def test_the_generated_api_key_lives_in_the_bucket_and_replicas_read_it(bucket, tmp_path):
    from mathgpt.serving.auth import load_api_key, write_private

    path = write_private("s3cret-key-0001", join(bucket, "run/serve/api_key"))
    assert path.startswith(bucket) and load_api_key("MATHGPT_TEST_UNSET_KEY", path) == "s3cret-key-0001"
    assert not any(p.name.startswith(("s3:", "gs:")) for p in tmp_path.iterdir())
    local = write_private("local-key-0002", str(tmp_path / "serve/api_key"))
    assert (tmp_path / "serve/api_key").stat().st_mode & 0o777 == 0o600 and load_api_key("X_UNSET", local) == "local-key-0002"
    with pytest.raises(ConfigError, match="does not exist"):
        load_api_key("X_UNSET", join(bucket, "no/key"))


def test_redoing_a_stage_clears_its_prefix_in_the_bucket(bucket):
    stage = join(bucket, "run/synthesis")
    write_json({"done": True}, join(stage, "response_diversification/done-00000.json"))
    write_json({}, join(stage, "manifest.json"))
    delete_dir(stage)
    assert not exists(join(stage, "manifest.json")) and tree(stage) == {}
    delete_dir(stage)  # nothing there: a no-op


def test_metrics_on_a_bucket_survive_a_restart(bucket):
    from mathgpt.training.job import read_metrics
    from mathgpt.training.metrics import MetricsSink

    out = join(bucket, "run/train_cpt")
    first = MetricsSink(join(out, "metrics.jsonl"), None, upload_every_s=3600)
    first.write({"step": 1, "loss": 2.0})
    first.flush()  # what a checkpoint does
    first.write({"step": 2, "loss": 1.5})  # lost with the worker: never uploaded
    second = MetricsSink(join(out, "metrics.jsonl"), None, resumed_at=1)  # its checkpoint: step 1
    second.write({"step": 2, "loss": 1.4})
    second.close()
    assert [(m["step"], m["loss"]) for m in read_metrics(out)] == [(1, 2.0), (2, 1.4)]
    fs, inner = filesystem(join(out, "metrics.jsonl"))
    assert fs.get_file_info(inner).size > 0


def test_the_progress_bar_follows_metrics_in_a_bucket_by_ranged_reads(bucket):
    from mathgpt.training.metrics import MetricsSink
    from mathgpt.training.progress import MetricsProgress

    path = join(bucket, "run/train_cpt/metrics.jsonl")
    progress = MetricsProgress(path, total_steps=3, name="train_cpt")
    assert progress.latest() == {}
    sink = MetricsSink(path, None, upload_every_s=3600)
    sink.write({"step": 1, "loss": 2.0})
    sink.flush()
    assert progress.latest()["step"] == 1
    sink.write({"step": 2, "loss": 1.5})
    sink.close()  # the object is replaced by a longer one: only its new tail is read
    assert progress.latest() == {"step": 2, "loss": 1.5}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_demo_recipe_trains_with_its_run_dir_in_a_gcs_bucket(gcs, tmp_path):
    """gs:// end to end (the S3 twin, on two nodes, is tests/test_multinode_bucket.py): Ray Data reads and writes,
    Ray Train's checkpoints and the exports go through the platform's filesystem to a real GCS emulator."""
    import os
    import subprocess
    import sys

    from mathgpt.dirs import published
    from mathgpt.io import read_json
    from tests.objstore import free_port
    from tests.smalldemo import write_small_demo

    run_dir = f"gs://{new_bucket('gs')}/demo"
    # Through CPT: its export published in the bucket. The stages after it load models from a bucket through
    # resolve_model, the same code for both stores, and the S3 twin runs them (CI's time).
    stages = ["synthesize", "curate", "mix", "train_cpt"]
    recipe = write_small_demo(tmp_path / "demo.yaml", run_dir, free_port(), stages=stages)
    env = {**os.environ, **gcs, "MATHGPT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "mathgpt.cli", "run", str(recipe)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1100)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-6000:]
    terminal = (out.stdout + out.stderr).splitlines()  # issue 17: Ray's own logs stay in their files
    assert len(terminal) <= 60, "\n".join(terminal)
    for stage in ("synthesis", "curate", "mix", "train_cpt"):
        assert read_json(join(run_dir, stage, "manifest.json"))["status"] == "complete", stage
    for stage in ("train_cpt",):
        assert published(join(run_dir, stage, "model")) is None
        assert "model.safetensors" in tree(join(run_dir, stage, "model"))
        assert any(p.startswith("ray/") for p in tree(join(run_dir, stage)))  # Ray Train's checkpoints, in the bucket
    assert not [p for p in tmp_path.rglob("gs:*")]  # nothing wrote a local `gs:` folder
