"""Connecting to Ray: only entry points (cli, jobs) call this, never library code on import."""

from __future__ import annotations

import logging
import os

from mathgpt.config import RayConfig


def init_ray(cfg: RayConfig) -> None:
    """Attach to a cluster (address or RAY_ADDRESS) or start a local Ray; quiet and idempotent.

    Token authentication is on (RAY_AUTH_MODE=token) unless the environment says otherwise: a local Ray
    started without it lets anyone who reaches the node's ports run code on it. Set before Ray is imported,
    which reads it once per process; Ray (>= 2.59) also turns it on for the local clusters it starts.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # address="local": always a new local instance; a bare ray.init() would attach to whatever
    # cluster `ray start` last recorded on this machine.
    kwargs: dict = {"address": "local", "include_dashboard": False, "logging_level": "WARNING",
                    "log_to_driver": cfg.log_to_driver}
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=cfg.log_to_driver)
    else:
        if cfg.num_cpus:
            kwargs["num_cpus"] = cfg.num_cpus
        if cfg.object_store_memory:
            kwargs["object_store_memory"] = cfg.object_store_memory
        ray.init(**kwargs)
    _terminal(cfg.log_to_driver)


def _terminal(verbose: bool) -> None:
    """What the driver prints. Quiet (the default): Ray Data's progress bars only on a terminal (piped, they
    become a log line per operator every few seconds) and its INFO lines only in its log file; httpx's request
    lines, matplotlib's and Serve's driver-side INFO off; where Ray's logs are said once."""
    import sys
    import warnings

    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = verbose or sys.stderr.isatty()
    if verbose:
        return
    for handler in logging.getLogger("ray.data").handlers:
        if not getattr(handler, "baseFilename", None):  # the console handler; the file keeps every level
            handler.setLevel(logging.WARNING)
            handler.addFilter(_not_progress_bar_notice)
    for name in ("httpx", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.serve").addFilter(_warnings_and_above)  # Serve resets its logger's level on start
    # Ray Train's own default ingest options set a field Ray Data has deprecated: nothing a user can change.
    warnings.filterwarnings("ignore", message=r".*exclude_resources.* is deprecated")
    session = _session_dir()
    if session:
        logging.getLogger("mathgpt").info("Ray's own logs (workers, Ray Train, Ray Data, Serve): %s/logs "
                                          "(ray.log_to_driver: true shows them here)", session)


def _not_progress_bar_notice(record: logging.LogRecord) -> bool:
    """Ray Data announces that its progress bars are off, which is what quiet mode asked for."""
    return not record.getMessage().startswith("Progress bars disabled")


def _warnings_and_above(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _session_dir() -> str | None:
    try:
        from ray._private.worker import _global_node

        return _global_node.get_session_dir_path() if _global_node is not None else None
    except (ImportError, AttributeError):
        return None
