"""The lab's base model, `builtin:lab-base`: the analogue of the paper's Llama-2 base, committed as a small artifact.

It is the offline tiny Llama trained from its random initialisation on the general corpus and the world's math
corpus (recipes/lab/pretrain.yaml, through the normal curate, mix and train_cpt stages). Building it takes about
nine minutes on 2 cores, more than `make demo` can afford, so the export is kept in the package
(`platform/mathgpt/models/lab_base/`, about 5 MB of safetensors) with PROVENANCE.json beside it: the command,
the recipe's settings fingerprint, the versions, the training counts, the held-out check of its mixture, and the
sha256 of every file. Training is reproducible bit for bit (seeded mixture, Ray Data order preserved into Ray
Train, gloo reductions in a fixed order), so `mathgpt lab base` rebuilds the same bytes on this kind of machine
and `mathgpt lab base --check` rebuilds it in a scratch folder and compares.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

from mathgpt.fingerprint import fingerprint, settings
from mathgpt.models.committed import ARTIFACT, PROVENANCE, SKIP, file_digests
from mathgpt.paths import REPO_ROOT

RECIPE = REPO_ROOT / "recipes" / "lab" / "pretrain.yaml"


def recipe_fingerprint(recipe: Any) -> str:
    """The settings the pretraining's stages (curate, mix, train_cpt) read, less the speed-only knobs. Sections no
    stage of it reads (synthesis, evaluation, serving, SFT) stay out: a new serving option must not make the
    committed model look stale."""
    dump = recipe.model_dump(mode="json")
    used = {"seed": dump["seed"], "stages": dump["stages"], "curation": dump["curation"], "mixing": dump["mixing"],
            "training.cpt": dump["training"]["cpt"]}
    return fingerprint(settings(used))


def build(work_dir: str, out_dir: Path = ARTIFACT, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain in `work_dir` (a run directory; complete stages are reused) and write the export and its
    provenance to `out_dir`, replacing what was there. Returns the provenance."""
    from mathgpt.config import load_recipe
    from mathgpt.lab.grid import check_mixture
    from mathgpt.lab.leakage import heldout_questions
    from mathgpt.manifest import load_manifest
    from mathgpt.pipeline import run_pipeline

    overrides = dict(overrides or {})
    recipe = load_recipe(RECIPE, {**overrides, "run_dir": work_dir})
    run_pipeline(recipe)
    check = check_mixture(recipe, heldout_questions())
    export = Path(recipe.resolved_run_dir, "train_cpt", "model")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in sorted(export.iterdir()):
        if p.is_file() and p.name not in SKIP:
            shutil.copyfile(p, tmp / p.name)
    manifests = {stage: load_manifest(str(Path(recipe.resolved_run_dir, stage))) for stage in recipe.stages}
    train = manifests["train_cpt"]["counts"]["final_metrics"]
    provenance = {
        "model": "builtin:lab-base",
        "command": "mathgpt lab base" + "".join(f" --set {k}={v}" for k, v in sorted(overrides.items())),
        "recipe": str(RECIPE.relative_to(REPO_ROOT)), "recipe_fingerprint": recipe_fingerprint(recipe),
        "overrides": overrides,
        "training": {k: train.get(k) for k in ("step", "tokens_seen", "loss")},
        "heldout_check": {"mixtures": 1, "found": sum(len(v) for v in check["found"].values())},
        "built_with": _versions(), "stage_seconds": {k: m["seconds"] for k, m in manifests.items()},
        "files": file_digests(tmp),
    }
    (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return provenance


def check(work_dir: str) -> tuple[bool, dict[str, Any]]:
    """Rebuild from scratch under `work_dir` (`run/`, cleared first, and `rebuilt/`) and compare every file with
    the committed artifact."""
    recorded = json.loads((ARTIFACT / PROVENANCE).read_text())
    work = Path(work_dir).resolve()
    shutil.rmtree(work / "run", ignore_errors=True)
    rebuilt = build(str(work / "run"), work / "rebuilt", recorded["overrides"])
    return rebuilt["files"] == recorded["files"], {"committed": recorded["files"], "rebuilt": rebuilt["files"]}


def _versions() -> dict[str, str]:
    import deepspeed
    import ray
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "deepspeed": deepspeed.__version__, "ray": ray.__version__, "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
