"""Real multi-node Ray clusters on this machine for tests: `ray start` per node, torn down completely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def cluster_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every node of one test cluster: token auth, this venv first on PATH, and a tag
    that every process of the cluster inherits (so that teardown finds them all, whatever they renamed to)."""
    env = {**(base or os.environ), "RAY_AUTH_MODE": "token", "MATHGPT_TEST_CLUSTER": uuid.uuid4().hex,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    return env


def start_node(args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    """`ray start ARGS`; fails the test with Ray's output when the node does not come up."""
    out = subprocess.run([RAY, "start", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def stop_cluster(env: dict[str, str]) -> None:
    """SIGKILL every process carrying this cluster's tag (never the test session's own Ray)."""
    tag = f"MATHGPT_TEST_CLUSTER={env['MATHGPT_TEST_CLUSTER']}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if tag in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue
