"""`ray job submit -- python jobs/train.py --recipe R`: the train stage (same arguments as `mathgpt train`)."""

import sys

from _entry import run

if __name__ == "__main__":
    run(["train", *sys.argv[1:]])
