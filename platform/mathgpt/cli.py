"""The `mathgpt` command. Every subcommand parses arguments, loads the recipe and calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

import yaml

from mathgpt.config import (
    STAGES,
    annotated_yaml,
    check_file_name,
    dump_recipe,
    load_recipe,
    recipe_sources,
)
from mathgpt.errors import MathGPTError
from mathgpt.methods import method_names


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise MathGPTError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def _recipe(args: argparse.Namespace) -> Any:
    return load_recipe(args.recipe, _overrides(getattr(args, "set", None) or []))


def _init(recipe: Any) -> None:
    from mathgpt.ray_init import init_ray

    init_ray(recipe.ray)


def cmd_config(args: argparse.Namespace) -> None:
    overrides = _overrides(args.set or [])
    recipe = load_recipe(args.recipe_path, overrides)
    if args.recipe_path.startswith("env:"):
        print(dump_recipe(recipe), end="")
        return
    print(annotated_yaml(recipe.model_dump(mode="json"), recipe_sources(args.recipe_path, overrides)), end="")


def cmd_run(args: argparse.Namespace) -> None:
    from mathgpt.pipeline import run_pipeline

    recipe = load_recipe(args.recipe_path, _overrides(args.set or []))
    _init(recipe)
    run_pipeline(recipe, from_stage=args.from_stage, only=args.only)


def _only(stage: str):
    def run(args: argparse.Namespace) -> None:
        from mathgpt.pipeline import run_pipeline

        recipe = _recipe(args)
        _init(recipe)
        run_pipeline(recipe, only=stage)

    return run


def cmd_synthesize(args: argparse.Namespace) -> None:
    from mathgpt.pipeline import stage_dir
    from mathgpt.synthesis.job import run_synthesis

    recipe = _recipe(args)
    _init(recipe)
    run_synthesis(recipe.synthesis, stage_dir(recipe, "synthesize"), args.method or None)


def cmd_train(args: argparse.Namespace) -> None:
    _only(f"train_{args.stage}")(args)


def cmd_eval(args: argparse.Namespace) -> None:
    from mathgpt.evaluation.job import run_evaluation
    from mathgpt.evaluation.stage import resolve_mode
    from mathgpt.io import join
    from mathgpt.pipeline import model_for

    name = args.name or os.path.basename(os.path.normpath(args.model))
    try:
        check_file_name(name, extra=":")  # a model reference such as builtin:tiny names its folder
    except ValueError as err:
        raise MathGPTError(f"--name {err} (the output folder)") from None
    recipe = _recipe(args)
    _init(recipe)
    out = args.out or join(recipe.resolved_run_dir, "eval", name)
    mode = resolve_mode(args.mode if args.mode != "auto" else recipe.evaluation.mode, args.model)
    summary = run_evaluation(recipe.evaluation, model_for(recipe, args.model), out, name, mode)
    print(json.dumps({"average": summary["average"], "report": join(out, "report.md")}))


def cmd_lab_world(args: argparse.Namespace) -> None:
    from mathgpt.labworld.world import WorldConfig, write_world

    print(json.dumps(write_world(WorldConfig(seed=args.seed), args.out)))


def cmd_lab_run(args: argparse.Namespace) -> None:
    from mathgpt.config import load_recipe
    from mathgpt.lab.grid import CELLS, RECIPES, run_grid, variant
    from mathgpt.lab.report import markdown

    variant(args.variant)  # an unknown name stops here, before Ray starts
    _init(load_recipe(RECIPES / "common.yaml"))
    result = run_grid(args.out, args.seeds, args.quick, tuple(args.cells or CELLS), _overrides(args.set or []),
                      args.variant)
    print(markdown(result))


def cmd_lab_base(args: argparse.Namespace) -> None:
    from mathgpt.config import load_recipe
    from mathgpt.lab.base import ARTIFACT, RECIPE, build, check

    _init(load_recipe(RECIPE))
    if args.check:
        same, files = check(args.work)
        print(json.dumps({"identical": same, **files}, indent=2))
        if not same:
            raise SystemExit(f"the rebuilt base model differs from {ARTIFACT}")
        return
    provenance = build(args.work)
    print(json.dumps({"artifact": str(ARTIFACT), **provenance}, indent=2))


def cmd_lab_report(args: argparse.Namespace) -> None:
    from mathgpt.lab.grid import write_report
    from mathgpt.lab.report import markdown

    print(markdown(write_report(args.out)))


def cmd_compare(args: argparse.Namespace) -> None:
    from mathgpt.evaluation.report import compare_runs

    print(compare_runs(args.runs, args.out))  # args.out: a local folder or a URI


def cmd_serve(args: argparse.Namespace) -> None:
    import signal
    import threading

    from mathgpt.config import RayConfig, ServingConfig
    from mathgpt.models import check_model_ref
    from mathgpt.ray_init import init_ray
    from mathgpt.serving.auth import load_api_key
    from mathgpt.serving.local import start, stop

    recipe = load_recipe(args.recipe) if args.recipe else None
    cfg = recipe.serving if recipe else ServingConfig()
    cfg = cfg.model_copy(update={k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None})
    load_api_key(cfg.api_key_env, cfg.api_key_file)  # refused here, at once, not after Serve's 180 s health wait
    init_ray(recipe.ray if recipe else RayConfig())
    base = start(cfg, check_model_ref(args.model))
    print(f"serving {args.model} as '{cfg.model_name}' on {base} (OpenAI API under {base}/v1); Ctrl-C drains and stops")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    stop()


def cmd_query(args: argparse.Namespace) -> None:
    from mathgpt.serving.local import query

    key = os.environ.get(args.api_key_env, "")
    if not key:
        raise MathGPTError(f"set {args.api_key_env} to the server's API key")
    result = query(args.url, key, args.question, args.model, args.max_tokens)
    print(result["completion"])
    print(f"\nfinal answer: {result['answer']}")


def cmd_submit(args: argparse.Namespace) -> None:
    from mathgpt.submit import follow, submit_stage

    job_id = submit_stage(args.address, args.stage, args.recipe, args.args)
    print(f"submitted {args.stage}: job id {job_id}", flush=True)
    if not args.no_follow:
        status = follow(args.address, job_id)
        print(f"\njob {job_id}: {status}")
        if status != "SUCCEEDED":
            sys.exit(1)


def cmd_status(args: argparse.Namespace) -> None:
    from mathgpt.submit import job_status

    info = job_status(args.address, args.job_id)
    print(f"{info['job_id']}: {info['status']} {info['message'] or ''}")
    print("\n".join(info["log_tail"]))


def build_parser() -> argparse.ArgumentParser:
    """The frozen CLI: new knobs belong in recipes, not flags."""
    p = argparse.ArgumentParser(prog="mathgpt", description="MathGPT platform: synthesis → curation → mixing → "
                                "CPT/SFT → evaluation → serving on Ray.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="show the resolved recipe").add_subparsers(dest="action", required=True)
    show = cfg.add_parser("show", help="print the recipe with every default filled in, each value followed by the "
                          "file it comes from (its base: chain, --set, or default)")
    show.add_argument("recipe_path", help="recipe YAML")
    show.add_argument("--set", action="append", help="override a key: a.b.c=value")
    show.set_defaults(fn=cmd_config)

    run = sub.add_parser("run", help="run a recipe's stages in order (complete stages are skipped)")
    run.add_argument("recipe_path", help="recipe YAML (recipes/demo.yaml, recipes/paper/*.yaml, ...)")
    run.add_argument("--from", dest="from_stage", choices=STAGES, help="redo this stage and the ones after it")
    run.add_argument("--only", choices=STAGES, help="(re)do this stage only")
    run.add_argument("--set", action="append", help="override a key: a.b.c=value")
    run.set_defaults(fn=cmd_run)

    def with_recipe(name: str, help_: str, fn: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--recipe", required=True, help="recipe YAML")
        sp.add_argument("--set", action="append", help="override a key: a.b.c=value")
        sp.set_defaults(fn=fn)
        return sp

    syn = with_recipe("synthesize", "run the synthesis methods", cmd_synthesize)
    syn.add_argument("--method", action="append", choices=method_names(), metavar="METHOD",
                     help=f"only this method (repeatable); one of: {', '.join(method_names())}")
    with_recipe("curate", "dedup and decontaminate", _only("curate"))
    with_recipe("mix", "build CPT mixtures and SFT sets", _only("mix"))
    tr = with_recipe("train", "continued pre-training or SFT", cmd_train)
    tr.add_argument("--stage", choices=["cpt", "sft"], required=True, help="cpt: train_cpt; sft: train_sft")
    ev = with_recipe("eval", "evaluate a model on the recipe's benchmarks", cmd_eval)
    ev.add_argument("--model", required=True, help="HF model dir, builtin:*, or stage:train_cpt|train_sft")
    ev.add_argument("--mode", choices=["auto", "fewshot", "chat"], default="auto",
                    help="prompting: auto (the recipe's evaluation.mode; if that is auto too, chat for a train_sft "
                    "model and few-shot otherwise), fewshot, chat")
    ev.add_argument("--name", help="run name in reports")
    ev.add_argument("--out", help="output folder (default: RUN_DIR/eval/NAME)")

    cmp_ = sub.add_parser("compare", help="side-by-side table of evaluation runs")
    cmp_.add_argument("runs", nargs="+", help="evaluation folders or report.json files")
    cmp_.add_argument("--out", default=".", help="where comparison.md/png go")
    cmp_.set_defaults(fn=cmd_compare)

    srv = sub.add_parser("serve", help="serve a model with Ray Serve (OpenAI API)")
    srv.add_argument("--model", required=True, help="HF model dir, URI, builtin:* or stage:train_cpt|train_sft")
    srv.add_argument("--recipe", help="take serving settings from a recipe")
    srv.add_argument("--host", help="bind address (default: the recipe's serving.host, 127.0.0.1)")
    srv.add_argument("--port", type=int, help="HTTP port (default: the recipe's serving.port)")
    srv.set_defaults(fn=cmd_serve)

    q = sub.add_parser("query", help="ask the served model a question")
    q.add_argument("question", help="the problem to ask, as plain text")
    q.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    q.add_argument("--model", default="mathgpt", help="the served model's name")
    q.add_argument("--api-key-env", default="MATHGPT_API_KEY", help="environment variable holding the API key")
    q.add_argument("--max-tokens", type=int, default=512, help="the most tokens to generate")
    q.set_defaults(fn=cmd_query)

    sm = sub.add_parser("submit", help="submit a stage to a Ray cluster (ray job submit)")
    sm.add_argument("stage", choices=["pipeline", "synthesize", "curate", "mix", "train", "evaluate"],
                    help="which jobs/<stage>.py to run on the cluster")
    sm.add_argument("--recipe", required=True, help="recipe YAML (sent with the job when outside the repository)")
    sm.add_argument("--address", default=os.environ.get("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:8265"),
                    help="the cluster's dashboard address (default: $RAY_API_SERVER_ADDRESS or 127.0.0.1:8265)")
    sm.add_argument("--no-follow", action="store_true", help="print the job id and return")
    sm.add_argument("args", nargs="*", help="extra arguments for the job script (after --)")
    sm.set_defaults(fn=cmd_submit)

    lab = sub.add_parser("lab", help="the research lab").add_subparsers(dest="action", required=True)
    world = lab.add_parser("world", help="write the procedural math world: train/held-out problems, math corpus")
    world.add_argument("--out", required=True, help="output folder or URI")
    world.add_argument("--seed", type=int, default=0, help="the world's seed (the lab's recipes use 0)")
    world.set_defaults(fn=cmd_lab_world)
    grid = lab.add_parser("run", help="run the grid of cells (base, test, test+<method>, sft) over seeds, then report")
    grid.add_argument("--out", default="runs/lab", help="the lab's folder (local)")
    grid.add_argument("--seeds", type=int, default=3, help="seeds per cell")
    grid.add_argument("--quick", action="store_true",
                      help="every training cut to 150k tokens, 20 held-out problems a level")
    grid.add_argument("--cells", nargs="*", help="a subset of the cells (default: all)")
    grid.add_argument("--set", action="append",
                      help="override a key of every cell's recipe: a.b.c=value (recorded in grid.json and the report)")
    grid.add_argument("--variant", help="a GPU variant of recipes/lab/variants.yaml (smollm2-lab, smollm2-math: "
                      "SmolLM2-135M as base model and student); default: the CPU grid")
    grid.set_defaults(fn=cmd_lab_run)
    base = lab.add_parser("base", help="rebuild the committed lab base model (builtin:lab-base) from its recipe")
    base.add_argument("--work", default="runs/lab-base", help="run directory of the pretraining (reused if complete)")
    base.add_argument("--check", action="store_true",
                      help="rebuild from scratch (under <work>/run and <work>/rebuilt) and compare with the committed "
                           "files instead of replacing them")
    base.set_defaults(fn=cmd_lab_base)
    rep = lab.add_parser("report", help="write report.md/json and the plot from the finished cells")
    rep.add_argument("--out", default="runs/lab", help="the lab's folder")
    rep.set_defaults(fn=cmd_lab_report)

    st = sub.add_parser("status", help="state and log tail of a submitted job")
    st.add_argument("job_id", help="the id `mathgpt submit` printed")
    st.add_argument("--address", default=os.environ.get("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:8265"),
                    help="the cluster's dashboard address (default: $RAY_API_SERVER_ADDRESS or 127.0.0.1:8265)")
    st.set_defaults(fn=cmd_status)
    return p


def exit_on_sigterm() -> None:
    """`ray job stop` and Kubernetes stop a driver with SIGTERM, on which Python ends at once without running
    `finally` blocks: shared engine deployments outlived the job (audit M3). Raise SystemExit instead."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mathgpt` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    exit_on_sigterm()
    try:
        args.fn(args)
    except MathGPTError as err:
        print(f"mathgpt: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
