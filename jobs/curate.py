"""`ray job submit -- python jobs/curate.py --recipe R`: the curate stage (same arguments as `mathgpt curate`)."""

import sys

from _entry import run

if __name__ == "__main__":
    run(["curate", *sys.argv[1:]])
