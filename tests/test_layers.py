"""The package's layers point one way: stages never import each other, and no import cycle joins packages.

Read from the source (every `import`, at module level or inside a function), so a lazy import counts too.
"""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "platform" / "mathgpt"
# The pipeline's stages: each may use the shared layers below it (config, io, engines, render, benchmarks, ...),
# never another stage. pipeline.py, cli.py and lab/ sit above them and run them.
STAGES = {"synthesis", "curation", "mixing", "training", "evaluation", "serving"}
# Heavy or GPU-only packages that importing any platform module must not pull in (each module imports them
# where it uses them).
HEAVY = ["vllm", "deepspeed", "ray.serve.llm", "ray.llm", "ray.data.llm", "torch", "transformers"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """The mathgpt modules that a module imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m == "mathgpt" or m.startswith("mathgpt.")}


def _unit(module: str) -> str:
    """The top-level package or module of mathgpt a module belongs to: mathgpt.serving.app -> serving."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mathgpt"


def _edges() -> dict[tuple[str, str], set[str]]:
    modules = _modules()
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(name, path):
            if target in modules or target.rsplit(".", 1)[0] in modules:
                a, b = _unit(name), _unit(target)
                if a != b and b != "mathgpt":
                    edges[(a, b)].add(f"{name} -> {target}")
    return edges


def test_no_stage_imports_another_stage():
    crossing = {k: sorted(v) for k, v in _edges().items() if k[0] in STAGES and k[1] in STAGES}
    assert not crossing, f"stage-to-stage imports (move the shared piece below the stages): {crossing}"


def test_no_package_import_cycle():
    """Between packages (the folders of mathgpt). The top-level modules (config, io, paths, pipeline, ...) are
    the shared base and the orchestration around the packages, not nodes of this graph."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    edges = {k: v for k, v in _edges().items() if k[0] in packages and k[1] in packages}
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    cycles = sorted({tuple(sorted((a, b))) for a, b in edges if reaches(b, a)})
    detail = {c: sorted(edges.get(c, set()) | edges.get(c[::-1], set())) for c in cycles}
    assert not cycles, f"package-level import cycles: {detail}"


def test_the_layer_check_sees_lazy_and_relative_imports(tmp_path):
    src = tmp_path / "mathgpt" / "curation"
    src.mkdir(parents=True)
    (src / "job.py").write_text("def f():\n    from mathgpt.evaluation.report import x\nfrom .text import y\n")
    assert _imports("mathgpt.curation.job", src / "job.py") == {
        "mathgpt.evaluation.report", "mathgpt.evaluation.report.x", "mathgpt.curation.text",
        "mathgpt.curation.text.y"}


def test_importing_any_module_pulls_in_no_engine_or_deep_learning_package():
    names = sorted(_modules())
    code = ("import importlib, json, sys\n"
            f"for m in {names!r}:\n    importlib.import_module(m)\n"
            f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if out.strip() != "[]":  # name the culprits
        culprits = {}
        for m in names:
            one = subprocess.run([sys.executable, "-c", f"import sys, {m}\nprint([h for h in {HEAVY!r} if h in "
                                  "sys.modules])"], capture_output=True, text=True, check=True).stdout.strip()
            if one != "[]":
                culprits[m] = one
        raise AssertionError(f"modules that import heavy packages when imported: {culprits}")
