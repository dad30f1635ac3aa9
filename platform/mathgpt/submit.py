"""Submit stages to a Ray cluster with the job SDK, follow their logs, report their status."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import yaml

from mathgpt.config import recipe_data
from mathgpt.paths import REPO_ROOT

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


def follow(address: str, job_id: str, poll_s: float = 1.0, echo: bool = True) -> str:
    """Print new log lines until the job ends; returns its final status."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    seen = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if echo and len(logs) > seen:
            print(logs[seen:], end="", flush=True)
        seen = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        time.sleep(poll_s)


def job_status(address: str, job_id: str, tail: int = 20) -> dict[str, Any]:
    """State, message and the log tail of a job."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    info = client.get_job_info(job_id)
    logs = client.get_job_logs(job_id).splitlines()
    return {"job_id": job_id, "status": str(info.status.value), "message": info.message, "log_tail": logs[-tail:]}
