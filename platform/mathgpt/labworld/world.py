"""The lab's procedural math world: multi-step word problems with exact step-by-step solutions.

A problem is a chain: the first person has some items, and each step says how many the next person has
relative to the one before ("3 more than", "2 fewer than", "twice as many as", "half as many as"). The
question asks for the last person's count; the difficulty is the number of steps. Every quantity stays in
0..max_value, so the arithmetic is small enough for a tiny model to learn.

Everything is seeded and deterministic: problem i of (split, level) depends only on the world's seed and
those three values. The held-out split uses people's names that the training split and the corpora never
show, and no held-out problem text occurs in training (`check_splits`).

The world's analogue of a math corpus (`math_corpus`) states its rules and arithmetic facts in prose,
without a single problem → solution pair.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Literal

Split = Literal["train", "heldout"]
Op = Literal["more", "fewer", "twice", "half"]


def name_pool() -> tuple[str, ...]:
    """Every two-syllable name of the world (consonant + vowel, twice; none ends in "e", which would make
    English words such as "More"), in a fixed shuffled order. A large pool makes copying a name something a
    model must learn rather than memorise. Measured before any grid ran (the tiny model from random init on
    problems alone, batches of 8 problems): with 24 training names, level-1 accuracy after 1.25M tokens was 100 %
    on new problems with training names and 4 % with held-out names (it wrote a training name instead); with
    400 names, 98 % on held-out names after 1.05M tokens."""
    first = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
    second = [c + v for c in "bdfghklmnprstvz" for v in "aiou"]
    pool = sorted({(a + b).capitalize() for a in first for b in second})
    random.Random("lab-names").shuffle(pool)
    return tuple(pool)


_POOL = name_pool()
HELDOUT_NAMES = _POOL[400:460]
# Every other name of the pool (4,440) is a training name. With 400 (the first design), a model trained on the
# test cell's data wrote a training name that shares the held-out name's first syllables ("Leli" for "Lelo"):
# a few hundred names are memorised, not copied. Thousands, each in a dozen problems, leave copying as the
# only way (measured before the full grid ran; the held-out split is the same problems as before).
TRAIN_NAMES = _POOL[:400] + _POOL[460:]
ITEMS = ("apples", "pencils", "stickers", "marbles", "coins", "books", "shells", "cards")
OPS: tuple[Op, ...] = ("more", "fewer", "twice", "half")


@dataclass(frozen=True)
class WorldConfig:
    """The world's design, fixed before any run: sizes per split and level, value range, levels, seed."""

    seed: int = 0
    max_value: int = 20
    levels: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    train_per_level: int = 2000
    heldout_per_level: int = 100
    max_k: int = 5
    corpus_documents: int = 400


@dataclass(frozen=True)
class Step:
    """One reasoning step: `name` has `value` items, from `source` (the previous person's count) by `op`."""

    name: str
    op: Op
    k: int
    source: int
    value: int

    def relation(self, previous: str, item: str) -> str:
        """The problem's sentence for this step."""
        return {"more": f"{self.name} has {self.k} more {item} than {previous}.",
                "fewer": f"{self.name} has {self.k} fewer {item} than {previous}.",
                "twice": f"{self.name} has twice as many {item} as {previous}.",
                "half": f"{self.name} has half as many {item} as {previous}."}[self.op]

    def working(self, item: str) -> str:
        """The arithmetic of this step, then the result (`Ben has 3 + 2 = 5 apples.`)."""
        expr = {"more": f"{self.source} + {self.k}", "fewer": f"{self.source} - {self.k}",
                "twice": f"2 * {self.source}", "half": f"{self.source} / 2"}[self.op]
        return f"{self.name} has {expr} = {self.value} {item}."

    def line(self, item: str) -> str:
        """The solution's line for this step: `So ` and the working. The tokenizer writes a name after a space
        ("ĠLe", "lo") with another first token than at the start of a line ("Le", "lo"); after `So ` the solution
        names a person with the very tokens the problem uses. A probe did not show that this helps copying (the
        tiny model from random init, 400 training names, problems alone, 2M tokens, one run each: the first step's
        held-out name right for 72 % of 40 level-1 problems when lines began with it, 55 % after "So "). Chosen
        on the tokenizer's evidence, with the larger name pool, before the full grid ran."""
        return f"So {self.working(item)}"


@dataclass(frozen=True)
class WorldProblem:
    """A problem with its exact solution steps."""

    id: str
    split: Split
    level: int
    item: str
    first: str
    start: int
    steps: tuple[Step, ...]

    @property
    def answer(self) -> int:
        return self.steps[-1].value

    @property
    def question(self) -> str:
        names = [self.first] + [s.name for s in self.steps]
        lines = [f"{self.first} has {self.start} {self.item}."]
        lines += [s.relation(names[i], self.item) for i, s in enumerate(self.steps)]
        return " ".join(lines) + f" How many {self.item} does {self.steps[-1].name} have?"

    @property
    def solution(self) -> str:
        return "\n".join(s.line(self.item) for s in self.steps) + f"\n#### {self.answer}"

    def record(self) -> dict[str, object]:
        """The platform's Problem record (the `math` loader reads it: id, problem, solution, answer, level)."""
        return {"id": self.id, "problem": self.question, "solution": self.solution, "answer": str(self.answer),
                "level": self.level, "subject": "lab"}


def apply(op: Op, source: int, k: int) -> int | None:
    """The result of a step, or None when it would leave the world's integers (odd half, negative)."""
    if op == "more":
        return source + k
    if op == "fewer":
        return source - k if source - k >= 0 else None
    if op == "twice":
        return 2 * source
    return source // 2 if source % 2 == 0 else None


def make_problem(cfg: WorldConfig, split: Split, level: int, index: int) -> WorldProblem:
    """Problem `index` of (split, level): the same problem for the same world, always."""
    rng = random.Random(f"{cfg.seed}/{split}/{level}/{index}")
    names = TRAIN_NAMES if split == "train" else HELDOUT_NAMES
    return random_problem(cfg, rng, level, names, f"lab-{split}-L{level}-{index:05d}", split)


def random_problem(cfg: WorldConfig, rng: random.Random, level: int, names: tuple[str, ...], problem_id: str,
                   split: Split = "train") -> WorldProblem:
    """A chain of `level` steps drawn with `rng`: people from `names`, one item, every count in 0..max_value."""
    pool = list(names)
    rng.shuffle(pool)
    people = pool[: level + 1]
    item = rng.choice(ITEMS)
    start = rng.randint(1, min(9, cfg.max_value))
    steps, value = [], start
    for name in people[1:]:
        choices = [(op, k) for op in OPS for k in (range(1, cfg.max_k + 1) if op in ("more", "fewer") else (0,))]
        rng.shuffle(choices)
        for op, k in choices:
            result = apply(op, value, k)
            if result is not None and result <= cfg.max_value:
                break
        else:  # unreachable: "fewer by 1" or "more by 1" always fits one of the bounds
            raise AssertionError(f"no step fits value {value}")
        steps.append(Step(name, op, k, value, result))
        value = result
    return WorldProblem(problem_id, split, level, item, people[0], start, tuple(steps))


def problems(cfg: WorldConfig, split: Split) -> Iterator[WorldProblem]:
    """Every problem of a split, level by level; training problems whose text repeats are skipped."""
    per_level = cfg.train_per_level if split == "train" else cfg.heldout_per_level
    seen: set[str] = set()
    for level in cfg.levels:
        made, index = 0, 0
        while made < per_level:
            if index > 50 * per_level:
                raise ValueError(f"level {level}: the world has fewer than {per_level} distinct {split} problems")
            p = make_problem(cfg, split, level, index)
            index += 1
            if p.question in seen:
                continue
            seen.add(p.question)
            made += 1
            yield p


def check_splits(train: list[WorldProblem], heldout: list[WorldProblem]) -> None:
    """Raise when a held-out problem's text occurs in training or a held-out name appears in training."""
    texts = {p.question for p in train}
    shared = [p.id for p in heldout if p.question in texts]
    if shared:
        raise ValueError(f"{len(shared)} held-out problem(s) also in training, first {shared[0]}")
    train_names = {n for p in train for n in (p.first, *(s.name for s in p.steps))}
    leaked = train_names & set(HELDOUT_NAMES)
    if leaked:
        raise ValueError(f"held-out names in training: {sorted(leaked)}")


def math_corpus(cfg: WorldConfig) -> Iterator[dict[str, object]]:
    """Documents that state the world's rules and arithmetic facts, never as a problem with its solution."""
    rng = random.Random(f"{cfg.seed}/corpus")
    facts: list[str] = []
    for a in range(cfg.max_value + 1):
        for k in range(1, cfg.max_k + 1):
            if a + k <= cfg.max_value:
                facts.append(f"{k} more than {a} is {a} + {k} = {a + k}.")
            if a - k >= 0:
                facts.append(f"{k} fewer than {a} is {a} - {k} = {a - k}.")
        if 2 * a <= cfg.max_value:
            facts.append(f"Twice {a} is 2 * {a} = {2 * a}.")
        if a % 2 == 0:
            facts.append(f"Half of {a} is {a} / 2 = {a // 2}.")
    rules = [f"To have {k} more {item} than someone is to have their number of {item} plus {k}."
             for item in ITEMS for k in (1, 2, 3)]
    rules += [f"To have {k} fewer {item} than someone is to have their number of {item} minus {k}."
              for item in ITEMS for k in (1, 2, 3)]
    rules += [f"Twice as many {item} as someone means two times their {item}; half as many means their {item} "
              f"divided by 2." for item in ITEMS]
    for i in range(cfg.corpus_documents):
        lines = rng.sample(facts, 12) + rng.sample(rules, 2)
        rng.shuffle(lines)
        yield {"id": f"lab-corpus-{i:05d}", "text": " ".join(lines)}


def interleaved(split: list[WorldProblem]) -> list[WorldProblem]:
    """The problems level by level in turn (L1, L2, ..., L6, L1, ...): every prefix of the file (a source's
    `limit`) has each level in equal measure."""
    by_level: dict[int, list[WorldProblem]] = {}
    for p in split:
        by_level.setdefault(p.level, []).append(p)
    columns = [by_level[level] for level in sorted(by_level)]
    return [col[i] for i in range(max(map(len, columns), default=0)) for col in columns if i < len(col)]


def write_world(cfg: WorldConfig, out_dir: str) -> dict[str, object]:
    """Write train.jsonl, heldout.jsonl (Problem records, `math` loader, levels interleaved), math_corpus.jsonl
    and world.json."""
    from dataclasses import asdict

    from mathgpt.io import join, write_json, write_jsonl

    train, heldout = list(problems(cfg, "train")), list(problems(cfg, "heldout"))
    check_splits(train, heldout)
    corpus = list(math_corpus(cfg))
    write_jsonl([p.record() for p in interleaved(train)], join(out_dir, "train.jsonl"))
    write_jsonl([p.record() for p in interleaved(heldout)], join(out_dir, "heldout.jsonl"))
    write_jsonl(corpus, join(out_dir, "math_corpus.jsonl"))
    summary = {"config": asdict(cfg), "train": len(train), "heldout": len(heldout), "math_corpus": len(corpus)}
    write_json(summary, join(out_dir, "world.json"))
    return summary
