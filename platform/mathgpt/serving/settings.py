"""Turn a ServingConfig (plus a model path) into the typed settings the Serve app is built from."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mathgpt.config import ServingConfig
from mathgpt.io import is_uri, join, read_json
from mathgpt.models import resolve_model


class ServingSettings(ServingConfig):
    """What the Serve app is built from and its deployments receive: the recipe's serving config, the model to
    load (a local path, or a URI each replica fetches) and the model's context length. Validated where it is
    built and again where a deployment receives it, so a wrong or missing field fails at once, by name."""

    model_path: str
    context_length: int = Field(..., ge=1)


def serving_settings(cfg: ServingConfig, model_path: str) -> ServingSettings:
    """Settings with the model's context length read from its config."""
    local = model_path if is_uri(model_path) else resolve_model(model_path)  # a URI is fetched by the replicas
    config = read_json(join(local, "config.json"))
    context = int(config.get("max_position_embeddings", 2048))
    return ServingSettings.model_validate({**cfg.model_dump(), "model_path": model_path, "context_length": context})


def app_builder(args: dict[str, Any]) -> Any:
    """Entry for `serve run serve/config.yaml`: args are ServingConfig fields plus `model`."""
    from mathgpt.serving.app import build_app

    args = dict(args)
    model = resolve_model(args.pop("model", "builtin:tiny"))
    return build_app(serving_settings(ServingConfig.model_validate({"model": model, **args}), model))
