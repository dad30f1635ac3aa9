"""Connecting to Ray: only entry points (cli, jobs) call this, never library code on import."""

from __future__ import annotations

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
                    "log_to_driver": True}
    if address:
        ray.init(address=address, logging_level="WARNING")
        return
    if cfg.num_cpus:
        kwargs["num_cpus"] = cfg.num_cpus
    if cfg.object_store_memory:
        kwargs["object_store_memory"] = cfg.object_store_memory
    ray.init(**kwargs)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = True
