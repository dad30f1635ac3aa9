import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mathgpt.config import EngineConfig, Recipe, dump_recipe, load_recipe, parse_recipe
from mathgpt.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
# Every YAML file under recipes/ is a recipe, but for the lab's variants (settings applied to every cell of a grid:
# tests/lab/test_grid.py checks them through the cells they make).
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml")
                 if p.relative_to(ROOT).as_posix() != "recipes/lab/variants.yaml")


def test_recipes_exist():
    assert any(p.name == "demo.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_validates(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert load_recipe(path) == parse_recipe(__import__("yaml").safe_load(dump_recipe(recipe)))


def test_unknown_key_is_rejected_with_its_path():
    with pytest.raises(ConfigError) as err:
        parse_recipe({"name": "x", "training": {"cpt": {"zero_stag": 2}}})
    assert "training.cpt.zero_stag: unknown key" in str(err.value)


def test_wrong_type_is_rejected_with_its_path():
    with pytest.raises(ConfigError) as err:
        parse_recipe({"name": "x", "synthesis": {"methods": [{"name": "response_diversification", "k": "many"}]}})
    assert "synthesis.methods.0: response_diversification.k: Input should be a valid integer" in str(err.value)
    with pytest.raises(ConfigError, match=r"synthesis.methods.0: unknown synthesis method 'tutorship'; registered: "
                                          r"response_diversification, query_expansion, .*tutorship_amplification"):
        parse_recipe({"name": "x", "synthesis": {"methods": [{"name": "tutorship"}]}})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="num_perm"):
        parse_recipe({"name": "x", "curation": {"minhash": {"num_perm": 100, "bands": 16}}})
    with pytest.raises(ConfigError, match="exactly one of weight or tokens"):
        parse_recipe({"name": "x", "mixing": {"components": [{"kind": "general"}]}})
    with pytest.raises(ConfigError, match="stages must follow"):
        parse_recipe({"name": "x", "stages": ["mix", "curate"]})
    with pytest.raises(ConfigError, match="base_url"):
        parse_recipe({"name": "x", "synthesis": {"teacher": {"type": "http"}}})
    with pytest.raises(ConfigError, match="train_sft needs SFT shards, but mixing.sft.enabled is false"):
        parse_recipe({"name": "x", "stages": ["mix", "train_sft"], "mixing": {"sft": {"enabled": False}}})
    src = {"name": "web", "path": "x.jsonl", "kind": "general"}
    with pytest.raises(ConfigError, match=r"source names must be unique .*\['web'\]"):
        parse_recipe({"name": "x", "curation": {"corpora": [src, {**src, "path": "y.jsonl"}]}})
    for section in ("curation", "mixing"):  # CPU actor pools: a count or an autoscaling range, like engines
        assert parse_recipe({"name": "x", section: {"concurrency": [2, 64]}}).model_dump()[section]["concurrency"] == (2, 64)
        with pytest.raises(ConfigError, match=rf"{section}.concurrency: .*1 <= min <= max"):
            parse_recipe({"name": "x", section: {"concurrency": [8, 2]}})


def test_every_field_has_a_description_and_default():
    from pydantic import BaseModel

    seen = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description or name == "name", f"{model.__name__}.{name} has no description"
            for sub in getattr(field.annotation, "__args__", ()) + (field.annotation,):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    walk(sub)

    walk(Recipe)
    assert len(seen) > 10


def test_overrides_and_run_dir_is_absolute(tmp_path):
    recipe = load_recipe(ROOT / "recipes/demo.yaml", {"training.cpt.max_steps": 3, "run_dir": "rel/{name}"})
    assert recipe.training.cpt.max_steps == 3
    assert Path(recipe.resolved_run_dir).is_absolute()


def test_config_show_cli():
    out = subprocess.run([sys.executable, "-m", "mathgpt.cli", "config", "show", str(ROOT / "recipes/demo.yaml")],
                         capture_output=True, text=True, check=True).stdout
    assert "zero_stage: 2" in out and "name: demo" in out
    bad = subprocess.run([sys.executable, "-m", "mathgpt.cli", "config", "show", "/nonexistent.yaml"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "recipe file not found" in bad.stderr


def test_a_recipe_inherits_from_its_base(tmp_path):
    """`base:` names another recipe (relative to this one): mappings merge key by key, lists and scalars replace,
    chains work, overrides apply last; a missing base or a cycle fails by name."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text(
        "name: root\nseed: 3\nstages: [synthesize, curate]\n"
        "synthesis:\n  teacher: {type: hf, batch_size: 4, concurrency: 2}\n  shard_size: 8\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nname: mid\nstages: [synthesize]\n"
                                               "synthesis:\n  teacher: {batch_size: 32}\n")
    (tmp_path / "leaf.yaml").write_text("base: sub/mid.yaml\nsynthesis:\n  teacher: {type: vllm, accelerator: cpu}\n")
    leaf = load_recipe(tmp_path / "leaf.yaml", {"seed": 5})
    assert (leaf.name, leaf.seed, leaf.stages, leaf.synthesis.shard_size) == ("mid", 5, ["synthesize"], 8)
    t = leaf.synthesis.teacher
    assert (t.type, t.accelerator, t.batch_size, t.concurrency) == ("vllm", "cpu", 32, 2)
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\nname: x\n")
    with pytest.raises(ConfigError, match=r"nowhere.yaml: recipe file not found \(the base of"):
        load_recipe(tmp_path / "lost.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="recipe bases form a cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_demo_vllm_is_the_demo_with_vllm_synthesis_and_serving():
    demo, vllm = load_recipe(ROOT / "recipes/demo.yaml"), load_recipe(ROOT / "recipes/demo-vllm.yaml")
    assert (vllm.synthesis.teacher.type, vllm.synthesis.teacher.device, vllm.synthesis.teacher.shared) == \
        ("vllm", "cpu", True)
    assert (vllm.serving.backend, vllm.serving.accelerator) == ("vllm", "cpu")
    same = {"synthesis", "serving", "name", "description"}
    assert {k: v for k, v in vllm.model_dump().items() if k not in same} == \
        {k: v for k, v in demo.model_dump().items() if k not in same}
    assert vllm.synthesis.methods == demo.synthesis.methods and vllm.serving.query == demo.serving.query


def test_names_that_become_file_names_and_bundled_paths_cannot_leave_their_folder(tmp_path):
    """L9: a source named `../x` wrote its rejects outside the run directory; `bundled://../..` read anything."""
    from mathgpt.paths import resolve_data_path

    for bad in ("../x", "a/b", "..", "a b"):
        with pytest.raises(ConfigError, match="curation.corpora.0.name.*use letters, digits"):
            parse_recipe({"name": "n", "curation": {"corpora": [{"name": bad, "path": "x.jsonl", "kind": "general"}]}})
    with pytest.raises(ConfigError, match="name.*use letters, digits"):
        parse_recipe({"name": "../../elsewhere"})
    with pytest.raises(ValueError, match="must stay inside the bundled data folder"):
        resolve_data_path("bundled://../../etc/passwd")
    assert resolve_data_path("bundled://gsm8k/train.jsonl").endswith("data/gsm8k/train.jsonl")
    out = subprocess.run([sys.executable, "-m", "mathgpt.cli", "eval", "--recipe", "recipes/demo.yaml",
                          "--model", "builtin:tiny", "--name", "../x"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "--name '../x': use letters" in out.stdout + out.stderr


def test_paper_recipes_are_one_base_plus_short_overlays():
    paper = ROOT / "recipes" / "paper"
    overlays = sorted(p for p in paper.glob("*.yaml") if p.name != "common.yaml")
    assert len(overlays) == 7
    for path in overlays:
        text = path.read_text()
        assert "base: common.yaml" in text and len(text.splitlines()) <= 35, path
        recipe = load_recipe(path)
        assert recipe.name == path.stem or path.stem == "q3-cpt-vs-sft"
    ta = load_recipe(paper / "q2-tutorship-amplification.yaml")
    assert [m.name for m in ta.synthesis.methods] == ["tutorship_amplification"] and ta.curation.include_synthesis
    assert load_recipe(paper / "q1-base-math-corpus.yaml").mixing.seq_len == 4096  # from the base


def test_config_show_says_which_file_each_value_comes_from(tmp_path):
    import yaml

    recipe = ROOT / "recipes" / "paper" / "q2-tutorship-amplification.yaml"
    out = subprocess.run([sys.executable, "-m", "mathgpt.cli", "config", "show", str(recipe),
                          "--set", "training.cpt.lr=1e-5"], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    said = {(line.strip().split(":")[0], line.rsplit("# ", 1)[1]) for line in out.splitlines() if "# " in line}
    assert ("name", "recipes/paper/q2-tutorship-amplification.yaml") in said
    assert ("run_dir", "recipes/paper/common.yaml") in said and ("log_to_driver", "default") in said
    assert ("lr", "--set") in said and ("lr", "recipes/paper/common.yaml") in said  # cpt's set, sft's from the base
    assert yaml.safe_load(out) == load_recipe(recipe, {"training.cpt.lr": 1e-5}).model_dump(mode="json")


def test_an_engines_batch_size_defaults_by_type():
    """hf generates a batch together (16 rows); vLLM batches continuously inside its engine, so its Ray Data batch is
    only a transfer unit and defaults larger (128 rows). A batch size the recipe gives is kept either way."""
    assert EngineConfig().batch_size == 16
    assert EngineConfig(type="vllm").batch_size == 128
    assert EngineConfig.model_validate({"type": "vllm", "batch_size": None}).batch_size == 128
    assert EngineConfig(type="vllm", batch_size=8).batch_size == 8
    with pytest.raises(ValidationError, match="batch_size"):
        EngineConfig(type="vllm", batch_size=0)
