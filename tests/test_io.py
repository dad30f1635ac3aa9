import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mathgpt.errors import RecordError
from mathgpt.io import read_json, read_records, write_json
from mathgpt.schemas import CHAT, PROBLEM, SCHEMAS


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


GOOD = json.dumps({"id": "a", "source": "s", "problem": "1+1?", "answer": "2"})


def test_malformed_json_names_file_line_and_field(tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD, "{not json"])
    with pytest.raises(RecordError) as err:
        read_records(path, PROBLEM)
    assert str(err.value).startswith(f"{path}:2: <json>: malformed JSON")


def test_missing_field_and_wrong_type(tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD, json.dumps({"id": "b", "source": "s"})])
    with pytest.raises(RecordError, match=r"p.jsonl:2: problem: missing required field"):
        read_records(path, PROBLEM)
    path = _write(tmp_path / "q.jsonl", [json.dumps({"id": "c", "source": "s", "problem": "x", "level": "high"})])
    with pytest.raises(RecordError, match=r"q.jsonl:1: level: expected int32"):
        read_records(path, PROBLEM)


def test_nested_type_errors():
    assert CHAT.validate({"id": "x", "source": "s", "messages": [{"role": "user"}]}) == (
        "messages", "item 0: missing 'content'")


def test_quarantine_counts_and_writes_rejects(tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD, "[1, 2]", "{bad", json.dumps({"id": "d", "source": "s", "problem": 3})])
    rejects = tmp_path / "rejects.jsonl"
    records, report = read_records(path, PROBLEM, on_error="quarantine", rejects_path=str(rejects))
    assert [r["id"] for r in records] == ["a"]
    assert report.n_ok == 1 and report.n_rejected == 3
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rows] == [(2, "<record>"), (3, "<json>"), (4, "problem")]


def test_parquet_rows_are_validated_with_row_numbers(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "a", "source": "s", "problem": "x"},
                                         {"id": "b", "source": "s", "problem": None}]), path)
    with pytest.raises(RecordError, match=r"p.parquet:2: problem: missing required field"):
        read_records(str(path), PROBLEM)


def test_pyarrow_filesystem_uri(tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD])
    records, _ = read_records(f"file://{path}", PROBLEM)
    assert records[0]["answer"] == "2"
    write_json({"k": 1}, f"file://{tmp_path}/out/x.json")
    assert read_json(str(tmp_path / "out/x.json")) == {"k": 1}


def test_schemas_cover_design():
    assert set(SCHEMAS) == {"Problem", "Sample", "Document", "Chat", "PackedSequence"}
    assert SCHEMAS["PackedSequence"].arrow.field("input_ids").type == pa.list_(pa.int32())
