"""`ray job submit -- python jobs/evaluate.py --recipe R [--model PATH]`: evaluation (default: the recipe's models)."""

import sys

from _entry import run

if __name__ == "__main__":
    args = sys.argv[1:]
    run(["eval", *args] if "--model" in args else ["run", args[args.index("--recipe") + 1], "--only", "evaluate"])
