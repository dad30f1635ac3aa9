"""`ray job submit -- python jobs/mix.py --recipe R`: the mix stage (same arguments as `mathgpt mix`)."""

import sys

from _entry import run

if __name__ == "__main__":
    run(["mix", *sys.argv[1:]])
