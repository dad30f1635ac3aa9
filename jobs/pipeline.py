"""`ray job submit -- python jobs/pipeline.py --recipe R [--from STAGE | --only STAGE] [--set K=V]`: the whole
recipe, as `mathgpt run` runs it (complete stages are skipped)."""

import argparse

from _entry import run

if __name__ == "__main__":
    from mathgpt.config import STAGES

    p = argparse.ArgumentParser(prog="jobs/pipeline.py", description=__doc__)
    p.add_argument("--recipe", required=True, help="recipe YAML (or env:NAME, as `mathgpt submit` sends one)")
    redo = p.add_mutually_exclusive_group()
    redo.add_argument("--from", dest="from_stage", choices=STAGES, help="redo this stage and the ones after it")
    redo.add_argument("--only", choices=STAGES, help="(re)do this stage only")
    p.add_argument("--set", action="append", default=[], help="override a key: a.b.c=value (repeatable)")
    a = p.parse_args()
    run(["run", a.recipe, *(["--from", a.from_stage] if a.from_stage else []), *(["--only", a.only] if a.only else []),
         *[arg for kv in a.set for arg in ("--set", kv)]])
