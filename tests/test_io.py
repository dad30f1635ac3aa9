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


def test_odd_bytes_and_characters_are_rejected_by_line_or_read_whole(tmp_path):
    """M5: an invalid UTF-8 byte is one line's reject, not the whole file's UnicodeDecodeError; U+2028 inside a
    JSON string is not a line break; a lone surrogate escape is rejected by line and field (it used to pass and
    crash the Parquet writer later, with no line); line numbers stay right after each of them."""
    sep = json.dumps({"id": "b", "source": "s", "problem": "x\u2028y\u0085z", "answer": "1"}, ensure_ascii=False)
    lone = json.dumps({"id": "c", "source": "s", "problem": "p", "answer": "\ud800"}, ensure_ascii=True)
    payload = "\n".join([GOOD, sep, "@@", lone, GOOD.replace('"a"', '"e"')]).encode() + b"\n"
    path = tmp_path / "p.jsonl"
    path.write_bytes(payload.replace(b"@@", b'{"id": "d", "source": "s", "problem": "caf\xe9", "answer": "1"}'))
    with pytest.raises(RecordError) as err:
        read_records(str(path), PROBLEM)
    assert str(err.value).startswith(f"{path}:3: <utf-8>: invalid UTF-8 byte 0xe9")
    rejects = tmp_path / "rejects.jsonl"
    records, report = read_records(str(path), PROBLEM, on_error="quarantine", rejects_path=str(rejects))
    assert [r["id"] for r in records] == ["a", "b", "e"] and records[1]["problem"] == "x\u2028y\u0085z"
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rows] == [(3, "<utf-8>"), (4, "answer")] and report.n_rejected == 2
    assert "surrogate" in rows[1]["reason"]


def test_a_file_is_read_in_pieces_with_lines_across_them(tmp_path):
    from mathgpt.io import _lines

    path = tmp_path / "p.jsonl"
    path.write_bytes(b"ab\ncdefgh\n\nij")
    assert list(_lines(str(path), chunk_bytes=3)) == [b"ab", b"cdefgh", b"", b"ij"]


def test_a_loader_that_raises_is_a_counted_reject_not_a_crash(tmp_path):
    """M5: a normaliser's own error (a bad index, a missing key) becomes the line's reject, named <normalize>."""
    path = _write(tmp_path / "p.jsonl", [GOOD, json.dumps({"id": "x"})])
    rejects = tmp_path / "rejects.jsonl"
    records, report = read_records(path, PROBLEM, normalize=lambda r: {**r, "answer": ["A", "B"][int(r["answer"])]},
                                   on_error="quarantine", rejects_path=str(rejects))
    assert report.n_ok == 0 and report.n_rejected == 2
    assert [json.loads(line)["field"] for line in rejects.read_text().splitlines()] == ["<normalize>"] * 2
    with pytest.raises(RecordError, match=r"p.jsonl:1: <normalize>: IndexError"):
        read_records(path, PROBLEM, normalize=lambda r: {**r, "answer": ["A", "B"][int(r["answer"])]})


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
