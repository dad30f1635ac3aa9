"""Arrow schemas of the platform's records, and per-record validation against them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record: its Arrow type and whether it must be present and non-null."""

    name: str
    type: pa.DataType
    required: bool = True


@dataclass(frozen=True)
class RecordSchema:
    """A named record type: ordered fields, an Arrow schema and a validator for Python dicts."""

    name: str
    fields: tuple[FieldSpec, ...]

    @property
    def arrow(self) -> pa.Schema:
        """The Arrow schema (optional fields nullable)."""
        return pa.schema([pa.field(f.name, f.type, nullable=not f.required) for f in self.fields])

    @property
    def names(self) -> list[str]:
        """Field names in order."""
        return [f.name for f in self.fields]

    def validate(self, record: Any) -> tuple[str, str] | None:
        """Return (field, reason) for the first problem in `record`, or None when it is valid."""
        if not isinstance(record, dict):
            return "<record>", f"expected a JSON object, got {type(record).__name__}"
        for spec in self.fields:
            value = record.get(spec.name)
            if value is None:
                if spec.required:
                    return spec.name, "missing required field"
                continue
            reason = _type_error(value, spec.type)
            if reason:
                return spec.name, reason
        return None

    def conform(self, record: dict[str, Any]) -> dict[str, Any]:
        """Keep the schema's fields only, filling absent optional ones with None (call after validate)."""
        out = {}
        for spec in self.fields:
            value = record.get(spec.name)
            if value is not None and pa.types.is_floating(spec.type):
                value = float(value)
            out[spec.name] = value
        return out


def _type_error(value: Any, typ: pa.DataType) -> str | None:
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        ok = isinstance(value, str)
    elif pa.types.is_boolean(typ):
        ok = isinstance(value, bool)
    elif pa.types.is_integer(typ):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif pa.types.is_floating(typ):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__}"
        for i, item in enumerate(value):
            inner = _type_error(item, typ.value_type)
            if inner:
                return f"item {i}: {inner}"
        return None
    elif pa.types.is_struct(typ):
        if not isinstance(value, dict):
            return f"expected an object, got {type(value).__name__}"
        for child in typ:
            if child.name not in value or value[child.name] is None:
                return f"missing '{child.name}'"
            inner = _type_error(value[child.name], child.type)
            if inner:
                return f"'{child.name}': {inner}"
        return None
    else:  # pragma: no cover - schemas only use the types above
        return None
    return None if ok else f"expected {typ}, got {type(value).__name__} {value!r:.40}"


_str, _i32, _f64, _bool = pa.string(), pa.int32(), pa.float64(), pa.bool_()
MESSAGE = pa.struct([pa.field("role", _str), pa.field("content", _str)])

PROBLEM = RecordSchema(
    "Problem",
    (
        FieldSpec("id", _str),
        FieldSpec("source", _str),
        FieldSpec("problem", _str),
        FieldSpec("solution", _str, False),
        FieldSpec("answer", _str, False),
        FieldSpec("level", _i32, False),
        FieldSpec("subject", _str, False),
    ),
)

SAMPLE = RecordSchema(
    "Sample",
    (
        FieldSpec("id", _str),
        FieldSpec("problem_id", _str),
        FieldSpec("method", _str),
        FieldSpec("model", _str),
        FieldSpec("prompt_version", _str),
        FieldSpec("problem", _str),
        FieldSpec("prompt", _str),
        FieldSpec("completion", _str),
        FieldSpec("answer", _str, False),
        FieldSpec("reference_answer", _str, False),
        FieldSpec("correct", _bool, False),
        FieldSpec("student_completion", _str, False),
        FieldSpec("first_error_step", _i32, False),
        FieldSpec("detour_step", _i32, False),
        FieldSpec("agreement", _f64, False),
        FieldSpec("parent_problem_id", _str, False),
    ),
)

DOCUMENT = RecordSchema(
    "Document",
    (
        FieldSpec("id", _str),
        FieldSpec("source", _str),
        FieldSpec("kind", _str),
        FieldSpec("text", _str),
        FieldSpec("n_tokens", _i32, False),
    ),
)

CHAT = RecordSchema(
    "Chat",
    (
        FieldSpec("id", _str),
        FieldSpec("source", _str),
        FieldSpec("messages", pa.list_(MESSAGE)),
    ),
)

PACKED_SEQUENCE = RecordSchema(
    "PackedSequence",
    (
        FieldSpec("input_ids", pa.list_(_i32)),
        FieldSpec("loss_mask", pa.list_(pa.int8())),
        FieldSpec("position_ids", pa.list_(_i32)),
        FieldSpec("doc_lengths", pa.list_(_i32)),
        FieldSpec("n_docs", _i32),
    ),
)

SCHEMAS = {s.name: s for s in (PROBLEM, SAMPLE, DOCUMENT, CHAT, PACKED_SEQUENCE)}
