"""The committed lab base model (builtin:lab-base): whole, made by today's recipe, and rebuilt bit for bit."""

import json
from pathlib import Path

import pytest

from mathgpt.config import load_recipe
from mathgpt.lab.base import RECIPE, build, recipe_fingerprint
from mathgpt.models.committed import ARTIFACT, PROVENANCE, file_digests, verify
from mathgpt.models import resolve_model

# A smaller base: a few thousand documents, 40k tokens in shards of 16 sequences (so that Ray Data hands
# several blocks to the two workers), 30 steps with a checkpoint on the way.
SMALL = {"curation.corpora": [
             {"name": "lab_math_corpus", "path": "lab://math_corpus.jsonl", "kind": "math_corpus", "limit": 300},
             {"name": "general_text_code", "path": "bundled://corpus/general/text_and_code.jsonl", "kind": "general",
              "limit": 200}],
         "mixing.total_tokens": 40_000, "mixing.shard_rows": 16, "training.cpt.max_steps": 30,
         "training.cpt.checkpoint_every": 15}


def test_the_committed_base_model_is_whole_small_and_made_by_the_current_recipe():
    provenance = json.loads((ARTIFACT / PROVENANCE).read_text())
    assert verify(ARTIFACT) is None  # every file as recorded
    assert sum(f["bytes"] for f in provenance["files"].values()) < 10 * 2**20
    assert provenance["recipe_fingerprint"] == recipe_fingerprint(load_recipe(RECIPE, provenance["overrides"])), (
        "recipes/lab/pretrain.yaml (or what it inherits) changed since builtin:lab-base was built: "
        "rebuild it with `mathgpt lab base`")
    assert provenance["heldout_check"]["found"] == 0
    # its tokenizer is the mixtures' (builtin:tiny), byte for byte
    tiny = Path(resolve_model("builtin:tiny"))
    assert (ARTIFACT / "tokenizer.json").read_bytes() == (tiny / "tokenizer.json").read_bytes()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve_model("builtin:lab-base"))
    assert model.config.vocab_size == json.loads((tiny / "config.json").read_text())["vocab_size"]


def test_a_damaged_artifact_is_refused(tmp_path):
    copy = tmp_path / "lab_base"
    copy.mkdir()
    for p in ARTIFACT.iterdir():
        copy.joinpath(p.name).write_bytes(p.read_bytes())
    assert verify(copy) is None
    with open(copy / "config.json", "a") as f:
        f.write(" ")
    assert "config.json" in verify(copy)


@pytest.mark.slow
def test_rebuilding_a_smaller_base_gives_the_same_bytes(ray_local, tmp_path):
    """Two builds from scratch, through curate, mix and train_cpt on two Ray Train workers: identical files."""
    first = build(str(tmp_path / "run1"), tmp_path / "out1", SMALL)
    second = build(str(tmp_path / "run2"), tmp_path / "out2", SMALL)
    shards = json.loads((tmp_path / "run1/mix/manifest.json").read_text())["counts"]["shards"]
    assert shards >= 4
    assert first["files"] == second["files"] == file_digests(tmp_path / "out2")
    assert first["training"]["step"] == 30 and "model.safetensors" in first["files"]
    assert first["command"].startswith("mathgpt lab base --set curation.corpora=")
