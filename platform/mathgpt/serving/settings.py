"""Turn a ServingConfig (plus a model path) into the plain settings dict the Serve app is built from."""

from __future__ import annotations

from typing import Any

from mathgpt.config import ServingConfig
from mathgpt.io import is_uri, join, read_json
from mathgpt.models import resolve_model


def serving_settings(cfg: ServingConfig, model_path: str) -> dict[str, Any]:
    """Settings with the model's context length read from its config."""
    local = model_path if is_uri(model_path) else resolve_model(model_path)  # a URI is fetched by the replicas
    config = read_json(join(local, "config.json"))
    context = int(config.get("max_position_embeddings", 2048))
    return {**cfg.model_dump(mode="json"), "model_path": model_path, "context_length": context}


def app_builder(args: dict[str, Any]) -> Any:
    """Entry for `serve run serve/config.yaml`: args are ServingConfig fields plus `model`."""
    from mathgpt.serving.app import build_app

    args = dict(args)
    model = resolve_model(args.pop("model", "builtin:tiny"))
    return build_app(serving_settings(ServingConfig.model_validate({"model": model, **args}), model))
