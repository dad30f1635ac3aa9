"""The lab grid: the paper's comparisons as cells, each run through the platform's own stages, several seeds.

Layout under the lab's folder (`--out`, default runs/lab):

- no base model: every cell starts from `builtin:lab-base`, the committed base model (mathgpt.lab.base:
  recipes/lab/pretrain.yaml, curate, mix and train_cpt from the tiny model's random initialisation; rebuilt bit
  for bit by `mathgpt lab base`);
- `shared/`: synthesis (the lab's programmatic teacher and student) and curation, made once: they do not
  depend on the seed (the engines' randomness comes from the request ids); `shared/tokenized/` holds the
  curated documents tokenized once, which every cell's mix reads;
- `seed-<n>/<cell>/`: one run directory per cell and seed, whose `synthesis` and `curate` are links to
  `shared/` (the pipeline checks that they were made with the cell's own settings) and whose mix, training and
  evaluation are its own. The sft cell starts its SFT from the same seed's base cell CPT model;
- `report.md`, `report.json`, `accuracy_by_level.png`: `mathgpt lab report` (also written after a run).

A variant (`--variant NAME`, recipes/lab/variants.yaml: the GPU grids with SmolLM2-135M) changes the model every
cell starts from and applies its settings to every cell, before the user's `--set`; its held-out benchmarks other
than `lab` get reports of their own (`report-<benchmark>.md`, ...).

A re-run skips what is complete, like every pipeline.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mathgpt.config import Recipe, load_recipe
from mathgpt.errors import StageError
from mathgpt.io import exists, join, read_parquet_rows, write_text
from mathgpt.models.committed import ARTIFACT, PROVENANCE
from mathgpt.lab.leakage import find_heldout, heldout_questions
from mathgpt.labworld.world import WorldConfig
from mathgpt.paths import REPO_ROOT

RECIPES = REPO_ROOT / "recipes" / "lab"
CELLS = ("base", "test", "test-rd", "test-qe", "test-re", "test-ta", "sft")
REPORT_NAMES = {"test-rd": "test+rd", "test-qe": "test+qe", "test-re": "test+re", "test-ta": "test+ta"}
BASE_MODEL = "builtin:lab-base"
VARIANTS = RECIPES / "variants.yaml"
# --quick: the same grid with every cell's training cut to 150k tokens, 20 held-out problems a level.
QUICK = {"mixing.total_tokens": 150_000, "training.cpt.max_steps": 146, "training.sft.max_steps": 73,
         "evaluation.benchmarks": [{"name": "lab", "max_tokens": 100, "limit_per_level": 20}],
         "synthesis.seeds": [{"name": "lab_train", "path": "lab://train.jsonl", "loader": "math", "limit": 300}],
         "synthesis.shard_size": 300}


@dataclass(frozen=True)
class Variant:
    """How a grid differs from the CPU grid: the model every cell starts from, settings applied to every cell (and
    more under --quick), and the held-out benchmarks its report reads."""

    base_model: str
    settings: dict[str, Any]
    quick: dict[str, Any]
    report: tuple[str, ...]

    def overrides(self, quick: bool, user: dict[str, Any] | None) -> dict[str, Any]:
        """Every cell's overrides: the variant's, its --quick ones, then the user's `--set` (which win)."""
        return {**self.settings, **(self.quick if quick else {}), **(user or {})}


def variant(name: str | None) -> Variant:
    """The CPU grid (None) or a variant of recipes/lab/variants.yaml."""
    if name is None:
        return Variant(BASE_MODEL, {}, {}, ("lab",))
    known = yaml.safe_load(VARIANTS.read_text())
    if name not in known:
        raise StageError(f"unknown lab variant {name!r}; {VARIANTS} has {sorted(known)}")
    spec = known[name]
    return Variant(spec["base_model"], spec.get("set") or {}, spec.get("quick") or {},
                   tuple(spec.get("report") or ("lab",)))


def variant_names() -> list[str]:
    return sorted(yaml.safe_load(VARIANTS.read_text()))


def _recipe(name: str, run_dir: str, quick: bool, extra: dict[str, Any] | None = None,
            overrides: dict[str, Any] | None = None) -> Recipe:
    """A lab recipe: --quick's budgets, then the user's --set overrides, then what the runner sets per cell."""
    return load_recipe(RECIPES / f"{name}.yaml",
                       {**(QUICK if quick else {}), **(overrides or {}), "run_dir": run_dir, **(extra or {})})


def _run(recipe: Recipe) -> None:
    from mathgpt.pipeline import run_pipeline

    run_pipeline(recipe)


def _link(target: str, link: str) -> None:
    """`link` -> `target` (a local lab folder): a cell reads the shared synthesis and curation in place."""
    if os.path.islink(link):
        if os.readlink(link) == target:
            return
        os.unlink(link)
    elif os.path.exists(link):
        raise StageError(f"{link} exists and is not a link to {target}; remove it or use another --out")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)


def cell_recipe(cell: str, out: str, seed: int, base_model: str, quick: bool,
                overrides: dict[str, Any] | None = None) -> Recipe:
    """A cell's recipe for one seed: its run directory, the seed of its mixture and training, the base model."""
    run_dir = join(out, f"seed-{seed}", cell)
    extra: dict[str, Any] = {"name": f"lab-{cell}-seed{seed}", "mixing.seed": seed, "training.cpt.seed": seed,
                             "training.sft.seed": seed, "training.cpt.model": base_model,
                             "mixing.tokenized_dir": join(out, "shared", "tokenized")}
    if cell == "sft":
        extra["training.sft.model"] = join(out, f"seed-{seed}", "base", "train_cpt", "model")
    return _recipe(cell, run_dir, quick, extra, overrides)


def run_grid(out: str, seeds: int = 3, quick: bool = False, cells: tuple[str, ...] = CELLS,
             overrides: dict[str, Any] | None = None, variant_name: str | None = None) -> dict[str, Any]:
    """Run every cell for every seed (complete work is skipped), then write the report. `overrides` (dotted keys,
    `mathgpt lab run --set`) apply to every cell alike and are recorded with the grid; `variant_name` picks a
    variant of recipes/lab/variants.yaml (None: the CPU grid)."""
    out = str(Path(out).resolve())
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        raise StageError(f"unknown lab cell(s) {unknown}; the grid has {list(CELLS)}")
    if "sft" in cells and "base" not in cells:
        raise StageError("the sft cell starts from the base cell's CPT model: run base too")
    grid = variant(variant_name)
    every_cell = grid.overrides(quick, overrides)
    started = time.time()
    questions = heldout_questions()
    shared = _recipe("common", join(out, "shared"), quick, {"stages": ["synthesize", "curate"]}, every_cell)
    _run(shared)
    for seed in range(seeds):
        for cell in (c for c in CELLS if c in cells):
            recipe = cell_recipe(cell, out, seed, grid.base_model, quick, every_cell)
            for stage in ("synthesis", "curate"):
                _link(join(shared.resolved_run_dir, stage), join(recipe.resolved_run_dir, stage))
            _run(recipe)
            check_mixture(recipe, questions)
    wall = time.time() - started
    write_text(json.dumps({"wall_s": wall, "seeds": seeds, "quick": quick, "cells": list(cells),
                           "overrides": overrides or {}, "variant": variant_name}),
               join(out, "grid.json"))
    return write_report(out)


def check_mixture(recipe: Recipe, questions: dict[str, str]) -> dict[str, Any]:
    """Search the run's training mixture for held-out problems (`mathgpt.lab.leakage`); stop on any.
    The result is kept as `heldout_check.json` in the run directory."""
    result = find_heldout(join(recipe.resolved_run_dir, "mix"), recipe.mixing.tokenizer, questions)
    write_text(json.dumps(result, indent=2), join(recipe.resolved_run_dir, "heldout_check.json"))
    if result["found"]:
        first = next(iter(result["found"].values()))[0]
        raise StageError(f"{recipe.resolved_run_dir}: held-out problems in the training mixture "
                         f"({ {k: len(v) for k, v in result['found'].items()} }, first {first}); the grid stops")
    return result


def collect(out: str, benchmark: str = "lab") -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Every finished cell's held-out predictions on `benchmark`: report name -> seed -> rows."""
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for seed_dir in sorted(Path(out).glob("seed-*")):
        seed = int(seed_dir.name.split("-", 1)[1])
        for cell in CELLS:
            stage = "train_sft" if cell == "sft" else "train_cpt"
            preds = join(str(seed_dir), cell, "eval", stage, "predictions", f"{benchmark}.parquet")
            if exists(preds):
                runs.setdefault(REPORT_NAMES.get(cell, cell), {})[seed] = read_parquet_rows(preds)
    return runs


def write_report(out: str) -> dict[str, Any]:
    """The report of each held-out benchmark the grid reads (the CPU grid: `lab`) from the cells that have
    finished: report.md, report.json and accuracy_by_level.png for `lab`, report-<benchmark>.* for another.
    Returns the first benchmark's result."""
    grid = join(out, "grid.json")
    settings = json.loads(Path(grid).read_text()) if exists(grid) else {}
    grid_variant = variant(settings.get("variant"))
    results = [_write_report(out, benchmark, settings, grid_variant) for benchmark in grid_variant.report]
    return results[0]


def _write_report(out: str, benchmark: str, settings: dict[str, Any], grid_variant: Variant) -> dict[str, Any]:
    from mathgpt.lab.report import findings, markdown, plot, scores

    suffix = "" if benchmark == "lab" else f"-{benchmark}"
    per_run = collect(out, benchmark)
    if not per_run:
        raise StageError(f"{out}: no finished lab cell (no seed-*/<cell>/eval/*/predictions/{benchmark}.parquet)")
    # Comparisons pair runs seed by seed: a seed counts once every run present has finished it (a grid still
    # running, or stopped, has seeds that only some cells reached).
    common = set.intersection(*(set(seeds) for seeds in per_run.values()))
    partial = sorted(set().union(*(set(seeds) for seeds in per_run.values())) - common)
    if not common:
        raise StageError(f"{out}: no seed has every run finished yet ({ {n: sorted(s) for n, s in per_run.items()} })")
    per_run = {name: {seed: rows for seed, rows in seeds.items() if seed in common} for name, seeds in per_run.items()}
    result = findings({name: scores(seeds) for name, seeds in per_run.items()})
    result["seeds_left_out"] = partial
    wall = settings.get("wall_s")
    result["overrides"] = settings.get("overrides") or {}
    checks = [json.loads(p.read_text()) for p in sorted(Path(out).glob("seed-*/*/heldout_check.json"))]
    ours = grid_variant.base_model == BASE_MODEL  # the committed base model: its own mixture was checked too
    base = json.loads((ARTIFACT / PROVENANCE).read_text())["heldout_check"] if ours else {"found": 0, "mixtures": 0}
    found = base["found"] + sum(len(v) for c in checks for v in c["found"].values())
    result["heldout_check"] = {"mixtures": len(checks) + base["mixtures"], "found": found}
    whose = "the base model's and every cell's" if ours else \
        f"every cell's; {grid_variant.base_model}'s own pretraining data is not known"
    note = (f"Held-out lab problems found, verbatim, in the {result['heldout_check']['mixtures']} training mixtures "
            f"({whose}; CPT streams and SFT rows, decoded): {found}.")
    world = WorldConfig()
    chance = ((f"Chance: every answer is a count in 0..{world.max_value}, so a model that names one at random scores "
               f"{100 / (world.max_value + 1):.1f} %; an interval that reaches that level does not show learning."),) \
        if benchmark == "lab" else ()
    refs = Counter(str(r["reference"]) for r in next(iter(next(iter(per_run.values())).values())))
    top, count = refs.most_common(1)[0]
    share = 100 * count / sum(refs.values())
    distinct = {name: len({str(r["answer"]) for rows in seeds.values() for r in rows}) for name, seeds in per_run.items()}
    constant = (f"Constant answer: the most common held-out answer is {top} ({share:.1f} % of the problems), so a model "
                f"that always answers {top} scores {share:.1f} %. Distinct answers each run gave: "
                + ", ".join(f"{name} {n}" for name, n in distinct.items()) + ".")
    result["constant_answer"] = {"answer": top, "accuracy": share / 100, "distinct_answers": distinct}
    left = (f"Seeds {partial} are left out: some runs have not finished them.",) if partial else ()
    named = ((f"Variant `{settings['variant']}` (recipes/lab/variants.yaml), held-out benchmark `{benchmark}`.",)
             if settings.get("variant") else ())
    changed = (("Every cell ran with these overrides of its recipe (`--set`): "
                + ", ".join(f"`{k}={v}`" for k, v in result["overrides"].items()) + "."),) if result["overrides"] else ()
    write_text(markdown(result, wall, (*named, *changed, note, *chance, constant, *left)),
               join(out, f"report{suffix}.md"))
    write_text(json.dumps(result, indent=2, default=str), join(out, f"report{suffix}.json"))
    plot(result, join(out, f"accuracy_by_level{suffix}.png"))
    return result
