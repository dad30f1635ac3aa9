"""Submit stages to a Ray cluster with the job SDK, follow their logs, report their status."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from pathlib import Path
from typing import Any

import yaml

from mathgpt.config import recipe_data
from mathgpt.paths import REPO_ROOT

log = logging.getLogger(__name__)

RECIPE_ENV = "MATHGPT_RECIPE_YAML"

EXCLUDES = [".venv", ".git", "runs", "**/__pycache__", "*.egg-info", ".pytest_cache", ".whl"]


def runtime_env(env_vars: dict[str, str] | None = None) -> dict[str, Any]:
    """The repository as working directory (jobs/, recipes, bundled data); nodes have the package installed
    (cluster/ configs install it)."""
    return {"working_dir": str(REPO_ROOT), "excludes": EXCLUDES,
            "env_vars": {"PYTHONUNBUFFERED": "1", **(env_vars or {})}}


def submit_stage(address: str, stage: str, recipe: str, extra_args: list[str] | None = None,
                 env_vars: dict[str, str] | None = None, entrypoint_num_cpus: float = 1.0) -> str:
    """Submit `python jobs/<stage>.py --recipe R` and return the job id (the driver reserves a CPU)."""
    from ray.job_submission import JobSubmissionClient

    entry, recipe_env = job_command(stage, recipe, extra_args)
    client = JobSubmissionClient(address)
    return client.submit_job(entrypoint=entry, runtime_env=runtime_env({**(env_vars or {}), **recipe_env}),
                             entrypoint_num_cpus=entrypoint_num_cpus)


def job_command(stage: str, recipe: str, extra_args: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """The job's shell command (every argument quoted) and the environment variables it needs. The job runs in
    the repository, uploaded as its working_dir: a recipe inside it is named by its path there; one outside it
    (which the cluster never sees) travels merged with its bases in MATHGPT_RECIPE_YAML (`--recipe env:...`)."""
    script = Path(REPO_ROOT, "jobs", f"{stage}.py")
    if not script.exists():
        raise FileNotFoundError(f"no job entry point {script}")
    path = Path(recipe).resolve()
    env: dict[str, str] = {}
    if path.is_relative_to(REPO_ROOT):
        recipe = str(path.relative_to(REPO_ROOT))
    else:
        env[RECIPE_ENV] = yaml.safe_dump(recipe_data(path), sort_keys=False)
        recipe = f"env:{RECIPE_ENV}"
    return shlex.join(["python", f"jobs/{stage}.py", "--recipe", recipe, *(extra_args or [])]), env


def follow(address: str, job_id: str, echo: bool = True, retries: int = 5, client: Any = None) -> str:
    """Print the job's log as it grows until the job ends; returns its final status.

    The log comes through Ray's websocket tail, so only new output crosses the network (polling the whole log
    every second grew with its square). A dropped connection or a failed status call is retried with backoff,
    up to `retries` failures in a row: the job goes on without its follower, so losing the stream once must
    not end the command. The tail restarts from the log's beginning on reconnect; what was printed is skipped.
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = client or JobSubmissionClient(address)
    terminal = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
    tail = _Tail(client, job_id, echo)
    failures = 0
    while True:
        before = tail.printed
        try:
            asyncio.run(tail.run())
            status = client.get_job_status(job_id)
        except Exception as exc:  # noqa: BLE001 - network and server errors alike: the job itself is unaffected
            failures = 1 if tail.printed > before else failures + 1
            if failures > retries:
                raise RuntimeError(f"lost the connection to the job server {failures} times in a row ({exc}); "
                                   f"the job goes on: `mathgpt status {job_id} --address {address}`") from exc
            wait = min(30.0, 2.0 ** failures)
            log.warning("job %s: log stream interrupted (%s); reconnecting in %.0f s", job_id, exc, wait)
            time.sleep(wait)
            continue
        failures = 0
        if status in terminal:
            return str(status.value)
        time.sleep(1.0)  # the tail ended but the job has not (a server that closed the stream early)


class _Tail:
    """One pass over the job's log tail, printing only characters past those printed on earlier passes."""

    def __init__(self, client: Any, job_id: str, echo: bool) -> None:
        self.client, self.job_id, self.echo = client, job_id, echo
        self.printed = 0

    async def run(self) -> None:
        offset = 0
        async for chunk in self.client.tail_job_logs(self.job_id):
            new = chunk[max(0, self.printed - offset):]
            offset += len(chunk)
            if new:
                if self.echo:
                    print(new, end="", flush=True)
                self.printed += len(new)


def job_status(address: str, job_id: str, tail: int = 20) -> dict[str, Any]:
    """State, message and the log tail of a job."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    info = client.get_job_info(job_id)
    logs = client.get_job_logs(job_id).splitlines()
    return {"job_id": job_id, "status": str(info.status.value), "message": info.message, "log_tail": logs[-tail:]}
