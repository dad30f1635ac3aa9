"""The benchmark registry: adding a benchmark is one entry in REGISTRY plus its data file.

A data file in the platform's Problem schema (JSONL rows with `id`, `problem`, `answer`, optionally `solution`,
`level`, `subject`) uses loader `problem`; GSM8K's and MATH's layouts have loaders of their own; a file in
another layout also needs its row normaliser in `datasets.BENCHMARK_NORMALIZERS` (loader `benchmark`). Every
registered benchmark whose file is present is checked by curation's decontamination (`benchmarks: all`) and can
be evaluated by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mathgpt.config import ProblemSource
from mathgpt.datasets import load_problems
from mathgpt.errors import ConfigError
from mathgpt.io import exists, join
from mathgpt.paths import resolve_data_path

AnswerType = Literal["number", "expression", "choice"]


@dataclass(frozen=True)
class Benchmark:
    """A test set: where it lives, how to read it, how it is prompted and scored."""

    name: str
    path: str
    loader: Literal["problem", "gsm8k", "math", "benchmark"]
    answer_type: AnswerType
    fewshot: Literal["gsm8k", "math", "lab"]
    max_tokens: int = 512

    def available(self) -> bool:
        """Whether its data file is present."""
        return exists(resolve_data_path(self.path))


def _bench(name: str, answer_type: AnswerType, fewshot: Literal["gsm8k", "math"] = "math",
           max_tokens: int = 512) -> Benchmark:
    return Benchmark(name, f"bundled://benchmarks/{name}/test.jsonl", "benchmark", answer_type, fewshot, max_tokens)


REGISTRY: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("gsm8k", "bundled://gsm8k/test.jsonl", "gsm8k", "number", "gsm8k", 400),
    Benchmark("math", "bundled://math/test.jsonl", "math", "expression", "math", 768),
    Benchmark("math500", "bundled://math500/test.jsonl", "math", "expression", "math", 768),
    _bench("svamp", "number", "gsm8k", 300), _bench("asdiv", "number", "gsm8k", 300),
    _bench("mawps", "number", "gsm8k", 300), _bench("carp_en", "expression"),
    _bench("college_math", "expression"), _bench("minerva_math", "expression", max_tokens=768),
    _bench("olympiadbench", "expression", max_tokens=1024), _bench("aime24", "number", max_tokens=1024),
    _bench("amc23", "number", max_tokens=1024), _bench("gaokao2023en", "expression"),
    _bench("sat_math", "choice"), _bench("mmlu_stem", "choice"), _bench("aqua", "choice"),
    # the research lab's held-out split: generated, deterministic, levels 1-6 (mathgpt.labworld); zero-shot (fewshot.py)
    # and 100 tokens, a third above the longest reference solution (77 tokens, level 6)
    Benchmark("lab", "lab://heldout.jsonl", "math", "number", "lab", 100),
]}


def get_benchmark(name: str) -> Benchmark:
    """A registered benchmark by name."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown benchmark {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


def available_benchmarks() -> list[str]:
    """Registered benchmarks whose data file is present."""
    return [name for name, bench in REGISTRY.items() if bench.available()]


def load_benchmark(name: str, limit: int | None = None, rejects_dir: str | None = None) -> list[dict[str, Any]]:
    """A benchmark's problems; rows without an answer are quarantined (and counted) when rejects_dir is set."""
    bench = get_benchmark(name)
    source = ProblemSource(name=name, path=bench.path, loader=bench.loader, limit=limit,
                           on_error="quarantine" if rejects_dir else "fail")
    rejects = join(rejects_dir, f"benchmark-{name}.jsonl") if rejects_dir else None
    problems, _ = load_problems(source, rejects)
    return problems
