"""Shared engines: one Ray Serve deployment per engine for a whole job, fed by Ray Data.

An engine pool built by `map_batches` (or by `ray.data.llm`'s vLLM processor) lives as long as one
dataset: one method round of one shard. With `shared: true` the engine is instead deployed once as a
Serve deployment (the serving app's model deployment: transformers or vLLM) and every round streams its
rows to it through `ray.data.llm`'s `ServeDeploymentProcessorConfig`, so shards and rounds reuse warm
engines and Serve autoscales the replicas. The engine contract (request rows in, completion columns
out, per-row seeds) is the same, so the outputs equal those of a non-shared engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from mathgpt.config import EngineConfig
from mathgpt.engines.requests import plain_row

log = logging.getLogger(__name__)
DEPLOYMENT = "Model"
METHOD = "engine_row"
_LIVE: dict[str, str] = {}  # engine key → Serve application name, while a `shared_engines` block runs


def engine_key(cfg: EngineConfig, model_path: str) -> str:
    """Which deployment serves an engine config: equal configs (teacher = student) share one."""
    blob = json.dumps([cfg.model_dump(mode="json"), model_path], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _deployment(cfg: EngineConfig, model_path: str) -> Any:
    from ray import serve

    from mathgpt.engines.replicas import HFModel, VLLMModel

    if isinstance(cfg.concurrency, tuple):
        scaling: dict[str, Any] = {"autoscaling_config": {"min_replicas": cfg.concurrency[0],
                                                          "max_replicas": cfg.concurrency[1],
                                                          "target_ongoing_requests": 2 * cfg.batch_size}}
    else:
        scaling = {"num_replicas": cfg.concurrency}
    if cfg.type == "vllm":
        from mathgpt.engines.vllm import replica_resources, vllm_engine_kwargs

        return serve.deployment(VLLMModel, name=DEPLOYMENT).options(
            max_ongoing_requests=max(16, cfg.max_concurrent_batches or 0) * cfg.batch_size,
            ray_actor_options=replica_resources(cfg), **scaling,
        ).bind(model_path, cfg.max_model_len, vllm_engine_kwargs(cfg))
    actor = {"num_cpus": cfg.num_cpus, **({"num_gpus": cfg.hf_gpus} if cfg.hf_gpus else {})}
    return serve.deployment(HFModel, name=DEPLOYMENT).options(
        max_ongoing_requests=4 * cfg.batch_size, ray_actor_options=actor, **scaling,
    ).bind(model_path, cfg.max_model_len, cfg.batch_size, 0.01, cfg.dtype)


@contextmanager
def shared_engines(engines: list[tuple[EngineConfig, str]], job: str) -> Iterator[None]:
    """Deploy every engine marked `shared` (once per distinct config) for the duration of the block.

    The block's `finally` deletes them (a SIGTERM, as `ray job stop` sends, runs it: see `cli.exit_on_sigterm`).
    A driver that dies without it (SIGKILL, its node lost) leaves them to a detached janitor actor, which
    deletes them once an actor the driver owns (and so dies with it) stops answering (audit M3)."""
    from ray import serve

    todo = [(cfg, path) for cfg, path in engines if cfg.shared and cfg.type != "http"]
    started: list[str] = []
    we_started_serve = bool(todo) and not _serve_running()
    janitor = None
    if we_started_serve:
        serve.start(http_options={"location": "NoServer"})  # handles only: no HTTP port for a batch job
    try:
        for cfg, path in todo:
            key = engine_key(cfg, path)
            if key in _LIVE:
                continue
            app = f"mathgpt-{job}-engine-{key}"
            log.warning("shared %s engine %s: deploying Serve app %s (replicas %s); it is deleted when the job "
                        "ends", cfg.type, cfg.model, app, cfg.concurrency)
            janitor = janitor or _start_janitor(job, we_started_serve)
            janitor.guard.remote(app)
            serve.run(_deployment(cfg, path), name=app, route_prefix=None)
            _LIVE[key] = app
            started.append(key)
        yield
    finally:
        for key in started:
            app = _LIVE.pop(key)
            serve.delete(app)
            log.info("shared engine %s: deleted", app)
        if janitor is not None:
            import ray

            ray.kill(janitor)
        if we_started_serve:
            serve.shutdown()


def _start_janitor(job: str, stop_serve: bool) -> Any:
    """A detached actor that deletes the apps it guards once this driver is gone."""
    import ray

    beacon = ray.remote(num_cpus=0)(_Beacon).remote()  # owned by this driver: it dies with it
    name = f"mathgpt-janitor-{job}-{uuid.uuid4().hex[:8]}"
    janitor = ray.remote(num_cpus=0)(_Janitor).options(name=name, namespace="mathgpt", lifetime="detached").remote(
        beacon, stop_serve)
    janitor.watch.remote(JANITOR_POLL_S)
    log.info("shared engines of %s: a janitor actor deletes them should this driver die", job)
    return janitor


JANITOR_POLL_S = 2.0


class _Beacon:
    def ping(self) -> bool:
        return True


class _Janitor:
    """Deletes the Serve apps it guards when the driver's beacon stops answering (the driver died)."""

    def __init__(self, beacon: Any, stop_serve: bool):
        self.beacon, self.stop_serve, self.apps = beacon, stop_serve, []

    def guard(self, app: str) -> None:
        self.apps.append(app)

    async def watch(self, poll_s: float) -> None:
        import asyncio

        import ray
        from ray import serve

        while True:
            try:
                await asyncio.wait_for(self.beacon.ping.remote(), 60)
            except (ray.exceptions.RayActorError, asyncio.TimeoutError):
                break
            await asyncio.sleep(poll_s)
        for app in self.apps:
            log.warning("shared engine %s: its driver is gone; deleting it", app)
            serve.delete(app)
        if self.stop_serve and not serve.status().applications:
            serve.shutdown()
        ray.actor.exit_actor()


def _serve_running() -> bool:
    import ray

    try:
        ray.get_actor("SERVE_CONTROLLER_ACTOR", namespace="serve")
        return True
    except ValueError:
        return False


def _preprocess(row: dict[str, Any]) -> dict[str, Any]:
    request = plain_row(row)
    return {**request, "method": METHOD, "request_kwargs": request}


def _postprocess(row: dict[str, Any]) -> dict[str, Any]:
    out = plain_row({k: v for k, v in row.items()
                     if k not in ("method", "request_kwargs", "batch_uuid", "time_taken", "__inference_error__")})
    err = row.get("__inference_error__")
    if err:  # the processor's own error row has none of the output columns
        out.update(completion="", n_prompt_tokens=0, n_completion_tokens=0, finish_reason="error", error=str(err))
    return out


def build_shared_processor(cfg: EngineConfig, model_path: str) -> Any:
    """A ray.data.llm processor that streams rows to the engine's live Serve deployment."""
    from ray.data.llm import ServeDeploymentProcessorConfig, build_processor

    app = _LIVE.get(engine_key(cfg, model_path))
    if app is None:
        raise RuntimeError(f"shared engine {cfg.model!r} is not deployed: run it inside `shared_engines(...)`")
    from mathgpt.engines.vllm import concurrency_kwargs

    config = ServeDeploymentProcessorConfig(deployment_name=DEPLOYMENT, app_name=app, batch_size=cfg.batch_size,
                                            concurrency=cfg.concurrency, should_continue_on_error=True,
                                            **concurrency_kwargs(cfg))
    return build_processor(config, preprocess=_preprocess, postprocess=_postprocess)
