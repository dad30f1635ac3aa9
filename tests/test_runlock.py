"""M9: one run per run directory; a second run fails at once, naming the holder, and a killed run's lock goes."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mathgpt.config import load_recipe
from mathgpt.errors import StageError
from mathgpt.pipeline import run_pipeline
from mathgpt.runlock import hold_run_dir

ROOT = Path(__file__).resolve().parent.parent
HOLD = "import sys, time\nfrom mathgpt.runlock import hold_run_dir\nwith hold_run_dir(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(120)\n"


def test_a_second_run_on_a_run_dir_fails_at_once_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        recipe = load_recipe(ROOT / "recipes/demo.yaml", {"run_dir": str(run_dir)})
        start = time.monotonic()
        with pytest.raises(StageError, match=rf"run is in use by another run \(.*\"pid\": {holder.pid}"):
            run_pipeline(recipe)
        assert time.monotonic() - start < 10 and not (run_dir / "recipe.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    with hold_run_dir(str(run_dir)):  # the kernel dropped the killed holder's lock: nothing stale is left
        pass
