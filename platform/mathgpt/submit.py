"""Submit stages to a Ray cluster with the job SDK, follow their logs, report their status."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from mathgpt.errors import ConfigError
from mathgpt.io import is_uri
from mathgpt.paths import REPO_ROOT

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

    entry = entrypoint(stage, recipe, extra_args)
    client = JobSubmissionClient(address)
    return client.submit_job(entrypoint=entry, runtime_env=runtime_env(env_vars),
                             entrypoint_num_cpus=entrypoint_num_cpus)


def entrypoint(stage: str, recipe: str, extra_args: list[str] | None = None) -> str:
    """The job's shell command, every argument quoted. The job runs in the repository uploaded as its
    working_dir, so a local recipe must be inside it (named relative to it); a URI recipe is read as it is."""
    script = Path(REPO_ROOT, "jobs", f"{stage}.py")
    if not script.exists():
        raise FileNotFoundError(f"no job entry point {script}")
    if not is_uri(recipe):
        path = Path(recipe).resolve()
        if not path.is_relative_to(REPO_ROOT):
            raise ConfigError(f"recipe {recipe}: outside the repository ({REPO_ROOT}), which is what the cluster "
                              "receives as the job's working_dir; copy it under recipes/, or put it on object "
                              "storage and pass its URI")
        recipe = str(path.relative_to(REPO_ROOT))
    return shlex.join(["python", f"jobs/{stage}.py", "--recipe", recipe, *(extra_args or [])])


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
