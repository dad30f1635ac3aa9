"""Turn a ServingConfig (plus a model path) into the typed settings the Serve app is built from."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mathgpt.config import ServingConfig
from mathgpt.models import resolve_model
from mathgpt.models.metadata import context_length


class ServingSettings(ServingConfig):
    """What the Serve app is built from and its deployments receive: the recipe's serving config, the model to
    load (a local path, or a URI each replica fetches) and the model's context length. Validated where it is
    built and again where a deployment receives it, so a wrong or missing field fails at once, by name."""

    model_path: str
    context_length: int = Field(..., ge=1)


def serving_settings(cfg: ServingConfig, model_path: str) -> ServingSettings:
    """Settings with the model's context length read from its config."""
    context = context_length(model_path)  # a URI's config.json is read in place; the replicas fetch the weights
    return ServingSettings.model_validate({**cfg.model_dump(), "model_path": model_path, "context_length": context})


def app_builder(args: dict[str, Any]) -> Any:
    """Entry for `serve run serve/config.yaml`: args are ServingConfig fields plus `model`."""
    from mathgpt.serving.app import build_app

    args = dict(args)
    model = resolve_model(args.pop("model", "builtin:tiny"))
    return build_app(serving_settings(ServingConfig.model_validate({"model": model, **args}), model))
