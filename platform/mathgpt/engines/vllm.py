"""vLLM engine through ray.data.llm (GPU). Imported lazily; without vLLM it says which extra to install."""

from __future__ import annotations

import importlib.util
from typing import Any

from mathgpt.config import EngineConfig
from mathgpt.engines.requests import plain_row, row_messages, stop_list
from mathgpt.errors import MissingDependencyError

_SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")


def require_vllm() -> None:
    """Raise a clear error when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise MissingDependencyError("vllm", "the 'vllm' engine")


def _preprocess(row: dict[str, Any]) -> dict[str, Any]:
    params = {k: row[k] for k in _SAMPLING_KEYS}
    stop = stop_list(row.get("stop"))
    if stop:
        params["stop"] = stop
    out = dict(row)
    out["sampling_params"] = params
    messages = row_messages(row)
    if messages is not None:
        out["messages"] = messages
        out.pop("prompt", None)
    else:
        out.pop("messages", None)
    return out


def _postprocess(row: dict[str, Any]) -> dict[str, Any]:
    out = plain_row({k: v for k, v in row.items() if k not in ("sampling_params", "generated_tokens", "params")})
    err = row.get("__inference_error__")
    out.update(completion=row.get("generated_text") or "", n_prompt_tokens=int(row.get("num_input_tokens") or 0),
               n_completion_tokens=int(row.get("num_generated_tokens") or 0),
               finish_reason="error" if err else "stop", error=str(err) if err else None)
    return out


def build_vllm_processor(cfg: EngineConfig, model_path: str, chat: bool) -> Any:
    """A ray.data.llm Processor running vLLM engine actors (fixed or autoscaling concurrency)."""
    require_vllm()
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    engine_kwargs = {"max_model_len": cfg.max_model_len, "tensor_parallel_size": cfg.tensor_parallel_size,
                     "pipeline_parallel_size": cfg.pipeline_parallel_size, "dtype": cfg.dtype,
                     **cfg.engine_kwargs}
    config = vLLMEngineProcessorConfig(
        model_source=model_path, engine_kwargs=engine_kwargs, batch_size=cfg.batch_size,
        concurrency=cfg.concurrency, chat_template_stage=chat, tokenize_stage=True, detokenize_stage=True,
        should_continue_on_error=True,
    )
    return build_processor(config, preprocess=_preprocess, postprocess=_postprocess)
