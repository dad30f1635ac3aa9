"""M6: the local Ray an entry point starts has token authentication on."""

import json
import os
import subprocess
import sys

PROBE = """
import json, os
from mathgpt.config import RayConfig
from mathgpt.ray_init import init_ray
init_ray(RayConfig(num_cpus=1))
from ray._raylet import AuthenticationMode, get_authentication_mode
print(json.dumps([os.environ["RAY_AUTH_MODE"], get_authentication_mode() == AuthenticationMode.TOKEN]))
"""


def test_init_ray_starts_a_local_cluster_with_token_auth():
    """RAY_AUTH_MODE unset: token auth. (Ray >= 2.59, the floor now, also does this by itself for local clusters;
    on 2.52-2.58, which the old floor allowed, only init_ray's own setting turned it on.)"""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["token", True]


def test_sigterm_runs_the_drivers_finally_blocks(tmp_path):
    """M3: `ray job stop` sends SIGTERM, which used to end the driver without its `finally` blocks (so a shared
    engine's Serve app was never deleted). The CLI turns it into SystemExit."""
    import signal
    import subprocess
    import sys
    import time

    done = tmp_path / "cleaned-up"
    code = ("import sys, time; from mathgpt.cli import exit_on_sigterm; exit_on_sigterm()\n"
            f"try:\n    print('ready', flush=True); time.sleep(60)\nfinally:\n    open({str(done)!r}, 'w').close()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM and done.exists() and time.monotonic() - started < 10
