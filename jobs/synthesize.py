"""`ray job submit -- python jobs/synthesize.py --recipe R`: the synthesize stage (same arguments as `mathgpt synthesize`)."""

import sys

from _entry import run

if __name__ == "__main__":
    run(["synthesize", *sys.argv[1:]])
