"""The synthesis job: seeds → method rounds on Ray Data → Parquet shards + rejects + manifest, resumable by shard."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from rich.console import Console
from rich.table import Table

from mathgpt.config import SynthesisConfig
from mathgpt.datasets import load_problems
from mathgpt.engines.shared import shared_engines
from mathgpt.errors import StageError
from mathgpt.fingerprint import fingerprint, mismatch, settings, stamp
from mathgpt.io import exists, join, read_json, write_json, write_jsonl, write_parquet
from mathgpt.manifest import stage_record
from mathgpt.methods import method_module
from mathgpt.models import check_model_ref
from mathgpt.schemas import SAMPLE
from mathgpt.synthesis.context import Counts, SynthesisContext
from mathgpt.synthesis.rounds import RoundCoordinator

log = logging.getLogger(__name__)


def load_seeds(cfg: SynthesisConfig, out_dir: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All seed problems (calculator annotations stripped), with a read report per source."""
    problems, reports = [], {}
    for src in cfg.seeds:
        rows, report = load_problems(src, join(out_dir, "rejects", f"seeds-{src.name}.jsonl"), strip_calc=True)
        problems.extend(rows)
        reports[src.name] = {"ok": report.n_ok, "rejected": report.n_rejected, "rejects": report.rejects_path}
    ids = [p["id"] for p in problems]
    if len(set(ids)) != len(ids):
        raise StageError("seed problem ids collide across sources; give sources distinct names")
    return problems, reports


def _shard_paths(method_dir: str, idx: int) -> dict[str, str]:
    stem = f"{idx:05d}"
    return {"samples": join(method_dir, f"samples-{stem}.parquet"), "rejects": join(method_dir, f"rejects-{stem}.jsonl"),
            "done": join(method_dir, f"done-{stem}.json")}


def shard_settings(cfg: SynthesisConfig, method_cfg: Any, shard: list[dict[str, Any]]) -> dict[str, Any]:
    """What one method's shard depends on: how shards are cut, the seeds, the method and both engines (speed-only
    knobs left out), and the ids of the shard's problems."""
    seeds = [s.model_dump(mode="json") for s in cfg.seeds]
    return settings({"synthesis": {"shard_size": cfg.shard_size, "seeds": seeds,
                                   "method": method_cfg.model_dump(mode="json"),
                                   "teacher": cfg.teacher.model_dump(mode="json"),
                                   "student": (cfg.student or cfg.teacher).model_dump(mode="json")},
                     "problem_ids_sha256": fingerprint([p["id"] for p in shard])})


def check_done_shard(marker: dict[str, Any], want: dict[str, Any], method: str, idx: int, path: str) -> None:
    """Refuse a finished shard that was made with other settings (audit M4: it would be reused silently)."""
    if "settings" not in marker:
        log.warning("%s: no settings fingerprint (made by an older version); reusing it unchecked", path)
    problem = mismatch(marker, want)
    if problem:
        raise StageError(f"{method} shard {idx} ({path}) was made with other settings than this run's: "
                         f"{problem}. Rerun with --from synthesize to redo the stage, or restore the settings it "
                         "was made with")


def run_method_shard(name: str, method_cfg: Any, shard: list[dict[str, Any]], ctx: SynthesisContext,
                     paths: dict[str, str], made_with: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one method on one shard of problems and write its samples, rejects and completion marker (with the
    settings it was made with and their fingerprint)."""
    ctx.rejects, ctx.counts = [], Counts()
    samples = method_module(name).run(shard, method_cfg, ctx)
    ids = [s["id"] for s in samples]
    if len(set(ids)) != len(ids):
        raise StageError(f"{name}: duplicate sample ids in one shard")
    write_jsonl(ctx.rejects, paths["rejects"])
    write_parquet(samples, paths["samples"], SAMPLE)
    counts = {**vars(ctx.counts), "samples": len(samples), "problems": len(shard)}
    marker = counts if made_with is None else {**counts, **stamp(made_with)}
    write_json(marker, paths["done"])  # written last: the shard counts only once this exists
    return counts


def run_synthesis(cfg: SynthesisConfig, out_dir: str, methods: list[str] | None = None) -> dict[str, Any]:
    """Run the configured methods over the seeds; finished shards are skipped on re-run."""
    selected = [m for m in cfg.methods if methods is None or m.name in methods]
    if methods and len(selected) != len(methods):
        known = [m.name for m in cfg.methods]
        raise StageError(f"method(s) {sorted(set(methods) - set(known))} are not configured; recipe has {known}")
    student_cfg = cfg.student or cfg.teacher
    with stage_record(out_dir, "synthesize", cfg.model_dump(mode="json")) as record:
        problems, reports = load_seeds(cfg, out_dir)
        record.inputs = {"seeds": reports}
        ctx = SynthesisContext(cfg.teacher, student_cfg, _model_path(cfg.teacher), _model_path(student_cfg))
        shards = [problems[i : i + cfg.shard_size] for i in range(0, len(problems), cfg.shard_size)]
        done = {(m.name, i) for m in selected for i in range(len(shards))
                if exists(_shard_paths(join(out_dir, m.name), i)["done"])}  # checked once: storage may be remote
        pending = len(done) < len(selected) * len(shards)
        engines = [(cfg.teacher, ctx.teacher_path), (student_cfg, ctx.student_path)] if pending else []
        with shared_engines(engines, "synthesize"):
            summary = _run_methods(cfg, selected, shards, ctx, out_dir, done)
        record.counts = summary
        record.outputs = {m: s["dir"] for m, s in summary.items()}
        record.inputs["models"] = {"teacher": cfg.teacher.model, "student": student_cfg.model}
    print_summary(summary)
    return summary


def _run_methods(cfg: SynthesisConfig, selected: list[Any], shards: list[list[dict[str, Any]]], ctx: SynthesisContext,
                 out_dir: str, done: set[tuple[str, int]]) -> dict[str, Any]:
    """Every method over every shard; a shard in `done` (it had a completion marker) is checked against this
    run's settings, skipped and its counts read back. Pending shards run in groups of `shards_per_pipeline`, each
    group's rounds through one pipeline (one engine start per round, not per round and shard)."""
    summary: dict[str, Any] = {}
    shards_per_pipeline = cfg.shards_per_pipeline
    for method_cfg in selected:
        method_dir = join(out_dir, method_cfg.name)
        pending = [i for i in range(len(shards)) if (method_cfg.name, i) not in done]
        made_with = {i: shard_settings(cfg, method_cfg, shards[i]) for i in range(len(shards))}
        counts_of = {i: read_json(_shard_paths(method_dir, i)["done"]) for i in range(len(shards)) if i not in pending}
        for i, marker in counts_of.items():
            check_done_shard(marker, made_with[i], method_cfg.name, i, _shard_paths(method_dir, i)["done"])
        for start in range(0, len(pending), shards_per_pipeline):
            group = pending[start:start + shards_per_pipeline]
            log.info("%s: shards %s of %d (%d problems) in lockstep rounds", method_cfg.name,
                     ",".join(str(i + 1) for i in group), len(shards), sum(len(shards[i]) for i in group))
            rounds = RoundCoordinator()
            work = [partial(run_method_shard, method_cfg.name, method_cfg, shards[i], ctx.for_shard(rounds),
                            _shard_paths(method_dir, i), made_with[i]) for i in group]
            counts_of.update(zip(group, rounds.run_all(work)))
        total, n_samples = Counts(), 0
        for i in range(len(shards)):
            total.merge(counts_of[i])
            n_samples += int(counts_of[i]["samples"])
        requested_now = sum(int(counts_of[i]["requested"]) for i in pending)
        summary[method_cfg.name] = {**vars(total), "samples": n_samples, "shards": len(shards),
                                    "shards_skipped": len(shards) - len(pending), "requested_this_run": requested_now,
                                    "dir": method_dir}
    return summary


def _model_path(engine: Any) -> str:
    """The model as engines take it: checked here, resolved on the node that loads it."""
    return engine.model if engine.type in ("http", "lab") else check_model_ref(engine.model)


def print_summary(summary: dict[str, Any]) -> None:
    """A per-method table: requested, generated, verified, samples, rejected by reason, tokens."""
    table = Table(title="synthesis")
    for col in ("method", "requested", "generated", "verified", "samples", "rejected", "tokens in/out", "shards"):
        table.add_column(col)
    for name, s in summary.items():
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(s["rejected"].items())) or "-"
        table.add_row(name, str(s["requested"]), str(s["generated"]), str(s["verified"]), str(s["samples"]),
                      rejected, f"{s['tokens_in']}/{s['tokens_out']}", f"{s['shards']} ({s['shards_skipped']} skipped)")
    Console(stderr=True).print(table)
