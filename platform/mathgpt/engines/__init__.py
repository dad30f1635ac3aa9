"""One engine interface, four backends chosen by config: hf (transformers), vllm (GPU or CPU), http (OpenAI API),
lab (the research lab's programmatic solver)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mathgpt.config import EngineConfig
from mathgpt.engines.requests import OUTPUT_COLUMNS, derive_seed, make_request
from mathgpt.raydata import actor_pool

if TYPE_CHECKING:
    import ray.data

__all__ = ["OUTPUT_COLUMNS", "derive_seed", "generate", "make_request", "local_generator"]


def generate(ds: "ray.data.Dataset", cfg: EngineConfig, model_path: str | None = None,
             chat: bool = True) -> "ray.data.Dataset":
    """Run request rows through the configured engine; returns rows with completion columns added."""
    if cfg.shared and cfg.type != "http":
        from mathgpt.engines.shared import build_shared_processor

        return build_shared_processor(cfg, model_path or cfg.model)(ds)
    if cfg.type == "vllm":
        from mathgpt.engines.vllm import build_vllm_processor

        return build_vllm_processor(cfg, model_path or cfg.model, chat)(ds)
    if cfg.type == "http":
        from mathgpt.engines.http import HTTPGenerator

        return ds.map_batches(
            HTTPGenerator, fn_constructor_kwargs=_http_kwargs(cfg, ship_key=True), batch_size=cfg.batch_size,
            compute=actor_pool(cfg.concurrency), num_cpus=cfg.num_cpus, batch_format="numpy",
        )
    if cfg.type == "lab":
        from mathgpt.engines.lab import LabGenerator

        return ds.map_batches(
            LabGenerator, fn_constructor_kwargs={"model": cfg.model, "error_rate": cfg.error_rate},
            batch_size=cfg.batch_size, compute=actor_pool(cfg.concurrency), num_cpus=cfg.num_cpus,
            batch_format="numpy",
        )
    from mathgpt.engines.hf import HFGenerator

    return ds.map_batches(
        HFGenerator,
        fn_constructor_kwargs={"model_path": model_path or cfg.model, "max_model_len": cfg.max_model_len,
                               "dtype": cfg.dtype},
        batch_size=cfg.batch_size, compute=actor_pool(cfg.concurrency), num_cpus=cfg.num_cpus,
        num_gpus=cfg.hf_gpus or None, batch_format="numpy",
    )


def _http_kwargs(cfg: EngineConfig, ship_key: bool = False) -> dict[str, Any]:
    """HTTPGenerator's arguments. SHIP_KEY (actors): the driver's API key, if it has one, travels as an object in
    Ray's object store, never in a runtime_env (which the GCS keeps and the state API and dashboard show to every
    user of the cluster); an actor whose node has the variable set uses its own."""
    kwargs = {"base_url": cfg.base_url, "model": cfg.model, "api_key_env": cfg.api_key_env,
              "requests_per_second": cfg.requests_per_second, "max_retries": cfg.max_retries,
              "timeout_s": cfg.timeout_s}
    key = os.environ.get(cfg.api_key_env)  # actors do not see env vars set after ray.init
    if ship_key and key:
        import ray

        kwargs["api_key_ref"] = [ray.put(key)]  # in a list, so that Ray hands the actor the reference itself
    return kwargs


def local_generator(cfg: EngineConfig, model_path: str | None = None) -> Any:
    """The bare engine in this process (benchmarks, serving): has `generate_rows(rows)`."""
    if cfg.type == "http":
        from mathgpt.engines.http import HTTPGenerator

        return HTTPGenerator(**_http_kwargs(cfg))
    if cfg.type == "vllm":
        raise ValueError("use vllm.LLM directly for an in-process vLLM baseline")
    if cfg.type == "lab":
        from mathgpt.engines.lab import LabGenerator

        return LabGenerator(cfg.model, cfg.error_rate)
    from mathgpt.engines.hf import HFGenerator

    return HFGenerator(model_path or cfg.model, cfg.max_model_len, cfg.dtype)
