"""The lab's procedural world: deterministic, exact, learnable-sized, with a held-out split training never sees."""

import json
import re
from collections import Counter

from mathgpt.datasets import math_problem
from mathgpt.grading import grade
from mathgpt.io import read_records
from mathgpt.labworld.world import (
    HELDOUT_NAMES,
    TRAIN_NAMES,
    WorldConfig,
    check_splits,
    make_problem,
    math_corpus,
    problems,
    name_pool,
    write_world,
)
from mathgpt.paths import data_dir

SMALL = WorldConfig(train_per_level=150, heldout_per_level=30, corpus_documents=20)
WORKING = re.compile(r"^So (\w+) has (\d+) ([-+*/]) (\d+) = (\d+) (\w+)\.$", re.M)  # the name after a word


def test_same_world_same_problems_and_files(tmp_path):
    assert make_problem(SMALL, "train", 4, 7) == make_problem(WorldConfig(train_per_level=9), "train", 4, 7)
    assert make_problem(SMALL, "train", 4, 7) != make_problem(WorldConfig(seed=1), "train", 4, 7)
    write_world(SMALL, str(tmp_path / "a"))
    write_world(SMALL, str(tmp_path / "b"))
    for name in ("train.jsonl", "heldout.jsonl", "math_corpus.jsonl", "world.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_every_step_is_exact_and_in_range_and_the_grader_accepts_the_reference():
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    for split in ("train", "heldout"):
        for p in problems(SMALL, split):
            lines = WORKING.findall(p.solution)
            assert len(lines) == len(p.steps) == p.level
            previous = p.start
            for (name, a, op, b, result, item), step in zip(lines, p.steps):
                a, b, result = int(a), int(b), int(result)
                assert ops[op](a, b) == result and 0 <= result <= SMALL.max_value
                assert previous in (a, b) and name == step.name and item == p.item
                previous = result
            assert previous == p.answer and grade(p.solution, str(p.answer))
            assert p.question.endswith(f"How many {p.item} does {p.steps[-1].name} have?")


def test_names_are_many_and_the_heldout_ones_apart():
    """Copying a name must be learnt, not memorised: thousands of training names, each in a few problems; held-out
    ones never among them."""
    assert len(TRAIN_NAMES) == 4440 and len(HELDOUT_NAMES) == 60 and len(set(name_pool())) == len(name_pool())
    assert set(TRAIN_NAMES).isdisjoint(HELDOUT_NAMES)
    assert all(re.fullmatch(r"[A-Z][a-z]{3}", n) and not n.endswith("e") for n in TRAIN_NAMES + HELDOUT_NAMES)
    train = list(problems(WorldConfig(train_per_level=2000), "train"))
    uses = Counter(n for p in train for n in (p.first, *(s.name for s in p.steps)))
    assert len(uses) == 4440 and max(uses.values()) < 30


def test_levels_and_answers_spread():
    train = list(problems(SMALL, "train"))
    assert sorted({p.level for p in train}) == [1, 2, 3, 4, 5, 6]
    assert len({p.answer for p in train}) > 15  # not a handful of answers to memorise
    assert {s.op for p in train for s in p.steps} == {"more", "fewer", "twice", "half"}


def test_heldout_shares_no_problem_and_no_name_with_training_or_the_corpus():
    train, heldout = list(problems(SMALL, "train")), list(problems(SMALL, "heldout"))
    check_splits(train, heldout)
    assert {p.question for p in train}.isdisjoint(p.question for p in heldout)
    train_text = " ".join(p.question + p.solution for p in train)
    corpus = " ".join(d["text"] for d in math_corpus(SMALL))
    general = (data_dir() / "corpus/general/text_and_code.jsonl").read_text()  # the lab's general corpus
    for name in HELDOUT_NAMES:
        assert re.search(rf"\b{name}\b", train_text) is None and name not in corpus
        assert re.search(rf"\b{name}\b", general, re.IGNORECASE) is None, name
    assert all(name.split()[0] in " ".join(p.question for p in heldout) for name in HELDOUT_NAMES[:3])
    assert "How many" not in corpus and "####" not in corpus  # rules and facts, no problem -> solution pairs


def test_files_load_through_the_platform_loader(tmp_path):
    write_world(SMALL, str(tmp_path))
    rows, report = read_records(str(tmp_path / "heldout.jsonl"), normalize=lambda r: math_problem(r, "lab"))
    assert report.n_rejected == 0 and len(rows) == 6 * 30
    assert rows[0]["level"] == 1 and rows[0]["answer"] == str(make_problem(SMALL, "heldout", 1, 0).answer)


def test_cli_writes_the_world(tmp_path, capsys):
    from mathgpt.cli import main

    main(["lab", "world", "--out", str(tmp_path), "--seed", "3"])
    assert '"heldout": 600' in capsys.readouterr().out
    assert (tmp_path / "train.jsonl").read_text().count("\n") == 12000


def test_the_world_is_a_data_path_and_its_heldout_split_a_benchmark(tmp_path, monkeypatch):
    import pytest

    from mathgpt.benchmarks import available_benchmarks, load_benchmark
    from mathgpt.evaluation.fewshot import fewshot_prompt
    from mathgpt.labworld.world import WorldConfig
    from mathgpt.paths import resolve_data_path

    monkeypatch.setenv("MATHGPT_CACHE_DIR", str(tmp_path / "cache"))
    write_world(WorldConfig(), str(tmp_path / "direct"))
    for name in ("train.jsonl", "heldout.jsonl", "math_corpus.jsonl"):
        assert open(resolve_data_path(f"lab://{name}"), "rb").read() == (tmp_path / "direct" / name).read_bytes()
    with pytest.raises(FileNotFoundError, match="lab://heldout.jsonl"):
        resolve_data_path("lab://test.jsonl")
    assert "lab" in available_benchmarks()
    bench = load_benchmark("lab")
    assert len(bench) == 600 and {p["level"] for p in bench} == {1, 2, 3, 4, 5, 6}
    prompt, stop = fewshot_prompt("lab", bench[0]["problem"])
    assert prompt == f"Problem:\n{bench[0]['problem']}\n\nSolution:\n" and "\n\nProblem:" in stop  # zero-shot


def test_every_prefix_of_a_split_file_has_every_level(tmp_path):
    """A source's `limit` takes a prefix: seeds or a quick evaluation must not be all level 1."""
    write_world(SMALL, str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [r["level"] for r in rows[:12]] == [1, 2, 3, 4, 5, 6] * 2
    assert sorted(r["id"] for r in rows) == sorted(p.id for p in problems(SMALL, "train"))
