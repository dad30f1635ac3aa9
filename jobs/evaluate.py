"""`ray job submit -- python jobs/evaluate.py --recipe R [--model M [--mode ...] [--name N] [--out DIR]]`: the
recipe's evaluate stage (its models), or one model as `mathgpt eval` evaluates it."""

import argparse

from _entry import run

if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="jobs/evaluate.py", description=__doc__)
    p.add_argument("--recipe", required=True, help="recipe YAML (or env:NAME, as `mathgpt submit` sends one)")
    p.add_argument("--model", help="evaluate this model (HF dir, URI, builtin:*, stage:train_cpt|train_sft) instead "
                   "of the recipe's evaluation.models")
    p.add_argument("--mode", choices=["auto", "fewshot", "chat"], help="with --model: the prompt mode")
    p.add_argument("--name", help="with --model: its name in reports")
    p.add_argument("--out", help="with --model: the output folder")
    p.add_argument("--set", action="append", default=[], help="override a key: a.b.c=value (repeatable)")
    a = p.parse_args()
    sets = [arg for kv in a.set for arg in ("--set", kv)]
    if a.model:
        extra = [arg for flag, v in (("--mode", a.mode), ("--name", a.name), ("--out", a.out)) if v for arg in (flag, v)]
        run(["eval", "--recipe", a.recipe, "--model", a.model, *extra, *sets])
    elif a.mode or a.name or a.out:
        p.error("--mode, --name and --out go with --model")
    else:
        run(["run", a.recipe, "--only", "evaluate", *sets])
