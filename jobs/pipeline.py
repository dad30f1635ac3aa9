"""`ray job submit -- python jobs/pipeline.py --recipe R [--from STAGE | --only STAGE]`: the whole recipe."""

import sys

from _entry import run

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--recipe" not in args:
        sys.exit("usage: python jobs/pipeline.py --recipe RECIPE [--from STAGE | --only STAGE]")
    i = args.index("--recipe")
    run(["run", args[i + 1], *args[:i], *args[i + 2:]])
