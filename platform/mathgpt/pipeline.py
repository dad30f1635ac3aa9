"""Run a recipe: the stages it names, in order, each skipped when its outputs are complete."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from mathgpt.config import STAGES, Recipe, dump_recipe
from mathgpt.errors import StageError
from mathgpt.dirs import delete_dir, published
from mathgpt.fingerprint import making, mismatch, settings
from mathgpt.io import join, write_text
from mathgpt.manifest import is_complete, load_manifest
from mathgpt.models import check_model_ref
from mathgpt.runlock import hold_run_dir

log = logging.getLogger(__name__)
STAGE_DIRS = {"synthesize": "synthesis", "curate": "curate", "mix": "mix", "train_cpt": "train_cpt",
              "train_sft": "train_sft", "evaluate": "eval", "serve": "serve"}
console = Console(stderr=True, width=160)


def stage_dir(recipe: Recipe, stage: str) -> str:
    """Where a stage's outputs and manifest live."""
    return join(recipe.resolved_run_dir, STAGE_DIRS[stage])


def model_for(recipe: Recipe, ref: str) -> str:
    """A model reference as the stages pass it on: `stage:train_cpt` becomes that stage's published export
    (a local folder or a URI), other references are checked here and resolved where the model is loaded."""
    if ref.startswith("stage:"):
        stage = ref.split(":", 1)[1]
        path = join(stage_dir(recipe, stage), "model")
        problem = published(path)
        if problem:
            raise StageError(f"{ref}: {path} is not a complete export ({problem}); run the {stage} stage first")
        return path
    return check_model_ref(ref)


def _synthesize(r: Recipe, out: str) -> dict[str, Any]:
    from mathgpt.synthesis.job import run_synthesis

    return run_synthesis(r.synthesis, out)


def _curate(r: Recipe, out: str) -> dict[str, Any]:
    from mathgpt.curation.job import run_curation

    syn = stage_dir(r, "synthesize")
    return run_curation(r.curation, syn if "synthesize" in r.stages else None, out)


def _mix(r: Recipe, out: str) -> dict[str, Any]:
    from mathgpt.mixing.job import run_mixing

    return run_mixing(r.mixing, stage_dir(r, "curate"), out)


def _train(stage: str, kind: str) -> Callable[[Recipe, str], dict[str, Any]]:
    def run(r: Recipe, out: str) -> dict[str, Any]:
        from mathgpt.training.job import run_training

        cfg = r.training.cpt if kind == "cpt" else r.training.sft
        return run_training(cfg, stage, join(stage_dir(r, "mix"), kind), out, model_for(r, cfg.model))

    return run


def _evaluate(r: Recipe, out: str) -> dict[str, Any]:
    from mathgpt.evaluation.stage import run_evaluate_stage

    models = {stage: model_for(r, r.training.cpt.model if stage == "base" else f"stage:{stage}")
              for stage in r.evaluation.models}
    return run_evaluate_stage(r.evaluation, models, out, r.name)


def _serve(r: Recipe, out: str) -> dict[str, Any]:
    from mathgpt.serving.stage import run_serve_stage

    return run_serve_stage(r.serving, model_for(r, r.serving.model), out, console.print)


RUNNERS: dict[str, Callable[[Recipe, str], dict[str, Any]]] = {
    "synthesize": _synthesize, "curate": _curate, "mix": _mix, "train_cpt": _train("train_cpt", "cpt"),
    "train_sft": _train("train_sft", "sft"), "evaluate": _evaluate, "serve": _serve,
}


def run_pipeline(recipe: Recipe, from_stage: str | None = None, only: str | None = None) -> dict[str, Any]:
    """Run the recipe's stages in order; complete stages are skipped unless --from/--only asks to redo them."""
    for flag, value in (("--from", from_stage), ("--only", only)):
        if value and value not in recipe.stages:
            raise StageError(f"{flag} {value}: not a stage of this recipe ({recipe.stages})")
    with hold_run_dir(recipe.resolved_run_dir):
        return _run_stages(recipe, from_stage, only)


SECTIONS = {"synthesize": "synthesis", "curate": "curation", "mix": "mixing", "train_cpt": "training.cpt",
            "train_sft": "training.sft", "evaluate": "evaluation", "serve": "serving"}


def _inputs(recipe: Recipe, stage: str) -> list[str]:
    """The stages whose outputs this stage reads."""
    model_stage = lambda ref: [ref.split(":", 1)[1]] if ref.startswith("stage:") else []  # noqa: E731
    if stage == "curate":
        return ["synthesize"] if recipe.curation.include_synthesis and "synthesize" in recipe.stages else []
    if stage == "mix":
        return ["curate"]
    if stage in ("train_cpt", "train_sft"):
        cfg = recipe.training.cpt if stage == "train_cpt" else recipe.training.sft
        return ["mix", *model_stage(cfg.model)]
    if stage == "evaluate":
        return [m for m in recipe.evaluation.models if m != "base"]  # `base` is a model reference, not a stage
    if stage == "serve":
        return model_stage(recipe.serving.model)
    return []


def stage_settings(recipe: Recipe, stage: str) -> dict[str, Any]:
    """What a stage's output depends on: its recipe section (without speed-only knobs) and the fingerprints of
    the outputs it reads."""
    section: Any = recipe
    for part in SECTIONS[stage].split("."):
        section = getattr(section, part)
    inputs = {}
    for up in _inputs(recipe, stage):
        up_dir = stage_dir(recipe, up)
        inputs[up] = load_manifest(up_dir).get("fingerprint") if is_complete(up_dir) else None
    if stage == "evaluate" and "base" in recipe.evaluation.models:
        inputs["base"] = recipe.training.cpt.model
    return {SECTIONS[stage]: settings(section.model_dump(mode="json")), "inputs": inputs}


def _run_stages(recipe: Recipe, from_stage: str | None, only: str | None) -> dict[str, Any]:
    run_dir = recipe.resolved_run_dir
    text = dump_recipe(recipe)
    write_text(text, join(run_dir, "recipe.yaml"))  # this attempt's recipe; every attempt's is kept below
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    write_text(text, join(run_dir, "recipes", f"{started}-{os.getpid()}.yaml"))
    order = {s: i for i, s in enumerate(STAGES)}
    timings: dict[str, Any] = {}
    for stage in recipe.stages:
        out = stage_dir(recipe, stage)
        redo = only == stage or (from_stage is not None and order[stage] >= order[from_stage])
        if only and stage != only:
            timings[stage] = {"status": "not run"}
            continue
        want = stage_settings(recipe, stage)
        if is_complete(out) and not redo:
            manifest = load_manifest(out)
            problem = mismatch(manifest, want)
            if problem:
                raise StageError(f"{stage}: {out} was made with other settings than this run's: {problem}. "
                                 f"Rerun with --from {stage} to redo it and every later stage, or restore the "
                                 "settings it was made with (its manifest has them)")
            if "settings" not in manifest:
                log.warning("%s: %s has no settings fingerprint (made by an older version); reusing it unchecked",
                            stage, out)
            timings[stage] = {"status": "skipped (complete)", "seconds": manifest.get("seconds")}
            console.print(f"[pipeline] {stage}: complete, skipping ({out})")
            continue
        if redo:
            delete_dir(out)
        console.rule(f"{stage}")
        start = time.time()
        with making(want):
            RUNNERS[stage](recipe, out)
        timings[stage] = {"status": "ran", "seconds": round(time.time() - start, 1)}
    print_summary(recipe, timings)
    return timings


def print_summary(recipe: Recipe, timings: dict[str, Any]) -> None:
    """Counts and time per stage, the evaluation table, and where everything is."""
    table = Table(title=f"run {recipe.name}: {recipe.resolved_run_dir}")
    for col in ("stage", "status", "seconds", "highlights", "outputs"):
        table.add_column(col)
    for stage in recipe.stages:
        out = stage_dir(recipe, stage)
        info = timings.get(stage, {})
        highlights = _highlights(stage, load_manifest(out)) if is_complete(out) else ""
        table.add_row(stage, info.get("status", ""), str(info.get("seconds", "")), highlights,
                      os.path.relpath(out, recipe.resolved_run_dir) if "://" not in out else out)
    console.print(table)
    if "train_cpt" in recipe.stages and recipe.training.cpt.model == "builtin:tiny":
        console.print("Note: the offline tiny model, trained for a few steps, answers wrongly: this run shows the "
                      "machinery working end to end, not the method's accuracy.")
    evaluation = stage_dir(recipe, "evaluate")
    if "evaluate" in recipe.stages and is_complete(evaluation):
        manifest = load_manifest(evaluation)
        console.print(_accuracy_table(manifest["counts"]))
        for path in manifest["outputs"].get("reports", []):
            console.print(f"evaluation report: {path}")


def _accuracy_table(counts: dict[str, Any]) -> Table:
    """Accuracy (%) with its 95 % interval, a row per evaluated model, a column per benchmark."""
    benches = sorted({b for c in counts.values() for b in c["benchmarks"]})
    table = Table(title="evaluation: accuracy % [95% interval] (n problems)")
    for col in ("model", *benches):
        table.add_column(col)
    for model, c in counts.items():
        cells = []
        for b in benches:
            acc, ci, n = c["benchmarks"].get(b), c.get("ci95", {}).get(b), c.get("n", {}).get(b)
            cells.append("" if acc is None else f"{100 * acc:.1f}" + (f" [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}] ({n})"
                                                                      if ci else ""))
        table.add_row(model, *cells)
    return table


def _highlights(stage: str, manifest: dict[str, Any]) -> str:
    c = manifest.get("counts", {})
    if stage == "synthesize":
        return ", ".join(f"{m}: {v['samples']} samples" for m, v in c.items())
    if stage == "curate":
        return (f"{c['documents_in']}→{c['documents_out']} docs, {c['exact_duplicates']}+{c['near_duplicates']} dups, "
                f"{c['contaminated']} contaminated")
    if stage == "mix":
        return (f"{c['sequences']} seqs x {c['seq_len']} ({c.get('packing', 'split')}, {c.get('documents_cut', '?')} "
                f"docs cut), pad {100 * c['padding_fraction']:.2f}%, {c.get('sft_rows', 0)} SFT rows")
    if stage.startswith("train"):
        m = c.get("final_metrics", {})
        return f"step {m.get('step')}, loss {m.get('loss', float('nan')):.3f}"
    if stage == "evaluate":
        return ", ".join(f"{k}: avg {100 * v['average']:.1f}%" for k, v in c.items())
    if stage == "serve":
        verdict = "" if "correct" not in c else (" (correct)" if c["correct"] else " (wrong)")
        return f"answer: {(c.get('answer') or {}).get('answer')!r}{verdict}"
    return ""
