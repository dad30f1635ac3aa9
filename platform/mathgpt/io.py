"""Read and validate JSONL/Parquet records from local paths or pyarrow.fs URIs; write outputs atomically.

Every bad record either fails with `file:line: field: reason` or, with on_error="quarantine",
goes to a rejects JSONL file whose count is reported. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mathgpt.errors import RecordError, StageError
from mathgpt.paths import resolve_data_path
from mathgpt.schemas import RecordSchema

log = logging.getLogger(__name__)

Normalizer = Callable[[dict[str, Any]], dict[str, Any]]


class FieldError(ValueError):
    """Raised by a normalizer: the field at fault and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def is_uri(path: str) -> bool:
    """Whether a path is a URI (read and written through pyarrow.fs) rather than a local path."""
    return "://" in path


GCS_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"  # the Google Cloud clients' own variable for a storage emulator


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and inner path for a local path or URI (s3://, gs://, file://).

    s3:// honours AWS_ENDPOINT_URL (an S3-compatible server) through pyarrow itself; gs:// honours
    STORAGE_EMULATOR_HOST (http://host:port of a GCS emulator, reached without credentials) here, since pyarrow's
    GCS client does not read it.
    """
    path = resolve_data_path(path)
    if path.startswith("gs://") and os.environ.get(GCS_EMULATOR_ENV):
        return _gcs_emulator(os.environ[GCS_EMULATOR_ENV]), path[len("gs://"):].rstrip("/")
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def gcs_emulator_endpoint(host: str) -> tuple[str, str]:
    """(scheme, host:port) of a STORAGE_EMULATOR_HOST value (`http://host:port`, or `host:port` for http)."""
    scheme, _, endpoint = host.rpartition("://")
    if not endpoint or scheme not in ("", "http", "https"):
        raise StageError(f"{GCS_EMULATOR_ENV}={host!r}: expected http://host:port")
    return scheme or "http", endpoint.rstrip("/")


def _gcs_emulator(host: str) -> pafs.FileSystem:
    scheme, endpoint = gcs_emulator_endpoint(host)
    return pafs.GcsFileSystem(anonymous=True, scheme=scheme, endpoint_override=endpoint)


def ray_paths(paths: list[str]) -> tuple[list[str], pafs.FileSystem | None]:
    """Paths and filesystem to hand Ray Data or Ray Train (`filesystem=`/`storage_filesystem=`): for URIs, the
    platform's own filesystem and the inner paths, so that Ray reaches them exactly as the platform does."""
    if not paths or not is_uri(resolve_data_path(paths[0])):
        return paths, None
    resolved = [filesystem(p) for p in paths]
    return [inner for _, inner in resolved], resolved[0][0]


def exists(path: str) -> bool:
    """Whether a file or folder exists at a local path or URI."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def delete_file(path: str) -> None:
    """Remove a file at a local path or URI; nothing there is not an error."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type == pafs.FileType.File:
        fs.delete_file(inner)


def clear_dir(path: str) -> None:
    """Empty a local folder or URI prefix, if it exists."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type == pafs.FileType.Directory:
        fs.delete_dir_contents(inner)


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or URI."""
    return "/".join([base.rstrip("/"), *parts]) if is_uri(base) else str(Path(base, *parts))


def canonical(path: str) -> str:
    """A local path with its links resolved (the same folder always has the same name); a URI as it is."""
    return path if is_uri(path) else os.path.realpath(path)


def list_files(path: str, suffixes: tuple[str, ...] = (".jsonl", ".parquet")) -> list[str]:
    """A file itself, or the sorted files with the given suffixes under a folder."""
    fs, inner = filesystem(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{path}: no such file or folder")
    if info.type == pafs.FileType.File:
        return [path]
    sel = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    files = sorted(i.path for i in sel if i.type == pafs.FileType.File and i.path.endswith(suffixes))
    prefix = path.split("://")[0] + "://" if is_uri(path) else ""
    return [prefix + f if prefix and not f.startswith(prefix) else f for f in files]


def _lines(path: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a file, streamed: split at b"\n" only (JSON strings may hold U+2028 and its kin raw)."""
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as stream:
        rest = b""
        while chunk := stream.read(chunk_bytes):
            *lines, rest = (rest + chunk).split(b"\n")
            yield from lines
        if rest:
            yield rest


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _lone_surrogate(value: Any, where: str = "") -> str | None:
    """The first field (dotted) whose text holds a lone surrogate (a JSON escape such as \\ud800), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "<value>"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _lone_surrogate(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _parse_line(raw: bytes) -> Any:
    """One JSON line → the record, or a FieldError naming what is wrong with it."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        return FieldError("<utf-8>", f"invalid UTF-8 byte 0x{raw[err.start]:02x} at byte {err.start} of the line")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return FieldError("<json>", f"malformed JSON: {err.msg} at column {err.colno}")
    bad = _lone_surrogate(record) if _SURROGATE_ESCAPE.search(raw) else None
    return FieldError(bad, "lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)") if bad else record


def _iter_jsonl(path: str) -> Iterator[tuple[int, Any]]:
    for lineno, raw in enumerate(_lines(path), start=1):
        if raw.strip():
            yield lineno, _parse_line(raw)


def _iter_parquet(path: str) -> Iterator[tuple[int, Any]]:
    fs, inner = filesystem(path)
    pf = pq.ParquetFile(inner, filesystem=fs)
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def iter_raw(path: str) -> Iterator[tuple[int, Any]]:
    """(line or row number, parsed record or FieldError) for every record of one file."""
    if path.endswith(".parquet"):
        return _iter_parquet(path)
    if path.endswith((".jsonl", ".json")):
        return _iter_jsonl(path)
    raise ValueError(f"{path}: unsupported format (use .jsonl or .parquet)")


@dataclass
class ReadReport:
    """What one read saw: records kept, rejected, and where the rejects went."""

    paths: list[str]
    n_ok: int = 0
    n_rejected: int = 0
    rejects_path: str | None = None
    first_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and manifests."""
        text = f"{self.n_ok} ok, {self.n_rejected} rejected"
        return text + (f" (rejects: {self.rejects_path})" if self.n_rejected else "")


def iter_records(
    path: str,
    schema: RecordSchema | None = None,
    normalize: Normalizer | None = None,
    on_error: str = "fail",
    rejects_path: str | None = None,
    limit: int | None = None,
    report: ReadReport | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the normalised, validated records of a file or folder of JSONL/Parquet files.

    Rejects (on_error="quarantine") are written to rejects_path once the stream is exhausted;
    `report` (when given) holds the counts then.
    """
    if on_error not in ("fail", "quarantine"):
        raise ValueError(f"on_error must be 'fail' or 'quarantine', got {on_error!r}")
    files = list_files(path)
    report = report if report is not None else ReadReport(paths=[])
    report.paths, report.rejects_path = files, rejects_path
    rejects: list[dict[str, Any]] = []
    for file in files:
        for lineno, raw in iter_raw(file):
            if limit is not None and report.n_ok >= limit:
                break
            try:
                rec = _check(raw, schema, normalize)
            except FieldError as err:
                if on_error == "fail":
                    raise RecordError(file, lineno, err.field, err.reason) from None
                rejects.append({"path": file, "line": lineno, "field": err.field, "reason": err.reason,
                                "record": raw if not isinstance(raw, Exception) else None})
                if len(report.first_errors) < 5:
                    report.first_errors.append(f"{file}:{lineno}: {err.field}: {err.reason}")
                continue
            report.n_ok += 1
            yield rec
    report.n_rejected = len(rejects)
    if rejects:
        if rejects_path is None:
            raise ValueError("on_error='quarantine' needs a rejects_path")
        write_jsonl(rejects, rejects_path)
        log.warning("%s: %d record(s) quarantined to %s; first: %s", path, len(rejects), rejects_path,
                    report.first_errors[0])


def read_records(
    path: str,
    schema: RecordSchema | None = None,
    normalize: Normalizer | None = None,
    on_error: str = "fail",
    rejects_path: str | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], ReadReport]:
    """Read, normalise and validate every record of a file or folder of JSONL/Parquet files."""
    report = ReadReport(paths=[])
    records = list(iter_records(path, schema, normalize, on_error, rejects_path, limit, report))
    return records, report


def _check(raw: Any, schema: RecordSchema | None, normalize: Normalizer | None) -> dict[str, Any]:
    if isinstance(raw, FieldError):
        raise raw
    if not isinstance(raw, dict):
        raise FieldError("<record>", f"expected a JSON object, got {type(raw).__name__}")
    try:
        rec = normalize(raw) if normalize else raw
    except FieldError:
        raise
    except Exception as err:  # a loader meeting a value it cannot read (a bad index, a missing key)
        raise FieldError("<normalize>", f"{type(err).__name__}: {err}") from None
    if schema is not None:
        problem = schema.validate(rec)
        if problem:
            raise FieldError(*problem)
        rec = schema.conform(rec)
    return rec


def _atomic_write(path: str, write: Callable[[pa.NativeFile], None]) -> None:
    fs, inner = filesystem(path)
    parent = inner.rsplit("/", 1)[0] if "/" in inner else ""
    if parent:
        fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        # a temp file renamed into place, each synced: after a crash or power loss a file is whole or absent
        # (a done marker never outlives the data it vouches for); the temp file never outlives a failed write
        tmp = f"{inner}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with fs.open_output_stream(tmp) as out:
                write(out)
            _fsync(tmp)
            os.replace(tmp, inner)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        _fsync(os.path.dirname(inner) or ".")
    else:  # object stores: composed in memory, then one upload; a write that fails uploads nothing (closing an
        # output stream would complete the upload of whatever it had been given)
        buffer = pa.BufferOutputStream()
        write(buffer)
        payload = buffer.getvalue()
        with fs.open_output_stream(inner) as out:
            out.write(payload)


def _fsync(path: str) -> None:
    """Flush a file's or a folder's data (a folder: the names in it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_jsonl(records: Iterable[dict[str, Any]], path: str) -> None:
    """Write records as JSON lines, atomically on local disks."""
    payload = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode()
    _atomic_write(path, lambda out: out.write(payload))


def write_parquet(records: list[dict[str, Any]], path: str, schema: RecordSchema | pa.Schema | None = None) -> None:
    """Write records as one Parquet file, atomically on local disks."""
    arrow = schema.arrow if isinstance(schema, RecordSchema) else schema
    table = pa.Table.from_pylist(records, schema=arrow)
    _atomic_write(path, lambda out: pq.write_table(table, out))


def read_parquet_rows(path: str) -> list[dict[str, Any]]:
    """All rows of a Parquet file or folder (for outputs the platform wrote itself)."""
    rows: list[dict[str, Any]] = []
    for file in list_files(path, (".parquet",)):
        fs, inner = filesystem(file)
        rows.extend(pq.read_table(inner, filesystem=fs).to_pylist())
    return rows


class ParquetChunks:
    """Rows streamed into numbered Parquet files of at most `chunk_rows` rows: `<prefix>-00000.parquet`, ..."""

    def __init__(self, out_dir: str, prefix: str, schema: RecordSchema, chunk_rows: int = 50_000):
        self.out_dir, self.prefix, self.schema, self.chunk_rows = out_dir, prefix, schema, chunk_rows
        self.rows: list[dict[str, Any]] = []
        self.files: list[str] = []
        self.n_rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.n_rows += 1
        if len(self.rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (an empty first chunk too, so that every source has a file with its schema)."""
        if self.rows or not self.files:
            path = join(self.out_dir, f"{self.prefix}-{len(self.files):05d}.parquet")
            write_parquet(self.rows, path, self.schema)
            self.files.append(path)
            self.rows = []


def files_stamp(files: list[str]) -> list[dict[str, Any]]:
    """(path, bytes, mtime) of each file: what a completion marker compares to know its inputs are unchanged."""
    stamp = []
    for f in files:
        fs, inner = filesystem(f)
        info = fs.get_file_info(inner)
        stamp.append({"path": f, "bytes": info.size, "mtime_ns": info.mtime_ns})
    return stamp


def parquet_set(out_dir: str, schema: RecordSchema) -> list[str]:
    """The Parquet files a Ray Data write left under out_dir; when it wrote none (no rows), one empty file
    with the schema, so that readers downstream still find the set and its columns."""
    files = list_files(out_dir, (".parquet",)) if exists(out_dir) else []
    if files:
        return files
    write_parquet([], join(out_dir, "empty.parquet"), schema)
    return [join(out_dir, "empty.parquet")]


def repeated_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The values that occur more than once, sorted (ids that must be unique, say)."""
    counts = pa.table({"v": values}).group_by("v").aggregate([("v", "count")])
    return sorted(counts.filter(pc.greater(counts.column("v_count"), 1)).column("v").to_pylist())


def require_unique_ids(ids: pa.Array | pa.ChunkedArray, stage: str, noun: str, hint: str) -> None:
    """A StageError naming the first repeated ids (of `noun`s, in `stage`) and what to do about it."""
    repeated = repeated_values(ids)
    if repeated:
        raise StageError(f"{stage}: {len(repeated)} {noun} id(s) occur more than once, e.g. {repeated[:5]}; {hint}")


def parquet_rows(files: list[str]) -> int:
    """Rows in Parquet files, from their footers."""
    return sum(pq.ParquetFile(filesystem(f)[1], filesystem=filesystem(f)[0]).metadata.num_rows for f in files)


def read_columns(files: list[str], columns: list[str], schema: pa.Schema | None = None) -> pa.Table:
    """Some columns of Parquet files (local or URIs) as one table; `schema` for an empty list."""
    tables = [pq.read_table(filesystem(f)[1], filesystem=filesystem(f)[0], columns=columns) for f in files]
    if not tables:
        return pa.table({c: pa.array([], schema.field(c).type if schema else pa.null()) for c in columns})
    return pa.concat_tables(tables)


def write_bytes(payload: bytes, path: str) -> None:
    """Write a binary file (plots), atomically on local disks."""
    _atomic_write(path, lambda out: out.write(payload))


def write_text(text: str, path: str) -> None:
    """Write a text file (reports), atomically on local disks."""
    write_bytes(text.encode(), path)


def write_json(obj: Any, path: str) -> None:
    """Write one JSON document (manifests, reports), atomically on local disks."""
    payload = json.dumps(obj, indent=2, ensure_ascii=False, default=str).encode()
    _atomic_write(path, lambda out: out.write(payload))


def read_text(path: str) -> str:
    """Read a text file from a local path or URI."""
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return stream.read().decode()


def read_json(path: str) -> Any:
    """Read one JSON document from a local path or URI."""
    return json.loads(read_text(path))
