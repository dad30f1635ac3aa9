"""The synthesis-method registry: the one place a method is named.

A method is one module with
- `METHOD`: its name, as recipes write it (`synthesis.methods: [{name: ...}]`);
- `CONFIG`: its settings, a `MethodSettings` subclass (below) whose `name` is `Literal[METHOD]`;
- `run(problems, cfg, ctx) -> samples`: its prompts, parsing and verification, calling engines only through
  the `SynthesisContext` it is given (synthesis/context.py), so that every engine (vllm, hf, http, the lab's)
  and Ray Data's streaming, sharding and resume serve it unchanged.
Adding one: write the module, add its line to `BUILTIN` (or call `register_method` from code that runs before
the recipe is loaded, e.g. a plugin's import).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from pydantic import Field

from mathgpt.errors import ConfigError
from mathgpt.strict import StrictModel

BUILTIN = {
    "response_diversification": "mathgpt.synthesis.response_diversification",
    "query_expansion": "mathgpt.synthesis.query_expansion",
    "retrospective_enhancement": "mathgpt.synthesis.retrospective_enhancement",
    "tutorship_amplification": "mathgpt.synthesis.tutorship_amplification",
}
_REGISTERED: dict[str, str] = dict(BUILTIN)


class MethodSettings(StrictModel):
    """Base of a synthesis method's settings: each method's module subclasses it, with `name` a Literal of the
    method's registered name. A recipe's `synthesis.methods` entries are validated by their method's class."""

    name: str = Field(..., description="The method's registered name.")


def method_names() -> tuple[str, ...]:
    """Every registered method's name, built-in ones first."""
    return tuple(_REGISTERED)


def method_module(name: str) -> ModuleType:
    """The module of a registered method (imported on first use)."""
    if name not in _REGISTERED:
        raise ConfigError(f"unknown synthesis method {name!r}; registered: {', '.join(_REGISTERED)}")
    return importlib.import_module(_REGISTERED[name])


def method_settings(name: str) -> Any:
    """A registered method's settings class."""
    return method_module(name).CONFIG


def register_method(module_name: str) -> str:
    """Register the method defined by a module (by its import path); returns its name. The module is imported
    and checked for the contract above, so that a broken method fails here and not mid-run."""
    module = importlib.import_module(module_name)
    missing = [a for a in ("METHOD", "CONFIG", "run") if not hasattr(module, a)]
    if missing:
        raise ConfigError(f"{module_name}: a synthesis method module needs {', '.join(missing)} (see mathgpt.methods)")
    name, config = module.METHOD, module.CONFIG
    if not (isinstance(config, type) and issubclass(config, MethodSettings)):
        raise ConfigError(f"{module_name}: CONFIG must subclass mathgpt.methods.MethodSettings")
    if config.model_fields["name"].default != name:
        raise ConfigError(f"{module_name}: CONFIG's name must default to METHOD ({name!r})")
    if _REGISTERED.get(name, module_name) != module_name:
        raise ConfigError(f"synthesis method {name!r} is already registered by {_REGISTERED[name]}")
    _REGISTERED[name] = module_name
    return name
