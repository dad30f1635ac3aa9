"""The benchmark corpus: the bundled textbooks, prose/code and GSM8K problems as plain documents."""

from __future__ import annotations

from mathgpt.io import iter_raw
from mathgpt.paths import resolve_data_path


def load_documents(repeat: int = 1) -> list[dict[str, str]]:
    """Every bundled document (`repeat` copies, ids made unique), texts as they are."""
    docs = []
    for path, field in (("bundled://corpus/math/textbooks.jsonl", "text"),
                        ("bundled://corpus/general/text_and_code.jsonl", "text"),
                        ("bundled://gsm8k/train.jsonl", "question")):
        for i, row in iter_raw(resolve_data_path(path)):
            docs.append({"id": f"{path.rsplit('/', 2)[-2]}-{i}", "text": str(row[field])})
    return [{"id": f"{d['id']}#{r}", "text": d["text"]} for r in range(repeat) for d in docs]
