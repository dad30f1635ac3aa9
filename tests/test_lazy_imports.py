import subprocess
import sys

HEAVY = ["vllm", "deepspeed", "ray.serve.llm", "torch", "transformers"]


def test_public_api_imports_no_heavy_engines():
    code = (
        "import sys\n"
        "import mathgpt, mathgpt.config, mathgpt.grading, mathgpt.engines, mathgpt.schemas, mathgpt.io\n"
        "import mathgpt.synthesis, mathgpt.cli, mathgpt.pipeline\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_does_not_start_ray():
    code = "import mathgpt.pipeline, mathgpt.synthesis.job, ray\nprint(ray.is_initialized())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
