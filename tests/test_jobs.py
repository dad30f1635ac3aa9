"""The job scripts (`ray job submit -- python jobs/<stage>.py ...`) parse their arguments like the CLI does."""

import subprocess
import sys
from pathlib import Path

JOBS = Path(__file__).resolve().parent.parent / "jobs"


def _job(script, *args):
    return subprocess.run([sys.executable, str(JOBS / script), *args], capture_output=True, text=True, timeout=120)


def test_job_scripts_refuse_bad_arguments_with_usage():
    out = _job("pipeline.py", "--recipe", "r.yaml", "--from", "mix", "--only", "mix")
    assert out.returncode == 2 and "not allowed with argument --from" in out.stderr
    out = _job("pipeline.py")
    assert out.returncode == 2 and "--recipe" in out.stderr
    out = _job("evaluate.py", "--recipe", "r.yaml", "--name", "x")
    assert out.returncode == 2 and "--mode, --name and --out go with --model" in out.stderr


def test_job_scripts_hand_their_arguments_to_the_cli(tmp_path):
    missing = tmp_path / "no-such-recipe.yaml"
    for script, args in (("pipeline.py", ["--only", "mix", "--set", "name=x"]), ("evaluate.py", []),
                         ("evaluate.py", ["--model", "builtin:tiny", "--mode", "chat"])):
        out = _job(script, "--recipe", str(missing), *args)
        assert out.returncode != 0 and str(missing) in out.stderr, (script, out.stderr[-2000:])
