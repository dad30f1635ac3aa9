"""Stateful row-batch UDFs on Ray Data actor pools: over in-memory rows, or from a Parquet file to Parquet files."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def map_with_actors(rows: list[dict[str, Any]], udf: type, kwargs: dict[str, Any], batch_size: int = 256,
                    max_actors: int = 4) -> list[dict[str, Any]]:
    """Rows through `udf` (a callable class built once per actor), on an autoscaling pool of 1..max_actors."""
    import ray.data

    return ray.data.from_items(rows).map_batches(
        udf, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max_actors)).take_all()


def map_file_to_parquet(src: str, columns: list[str], udf: type, kwargs: dict[str, Any], out_dir: str,
                        stamp: dict[str, Any], batch_size: int = 256, max_actors: int = 4,
                        batch_format: str = "numpy") -> list[str]:
    """Stream a Parquet file through `udf` actors into Parquet files under out_dir, once per input.

    A marker written last records the input (path, rows, size, mtime) and `stamp` (the UDF's settings);
    a re-run that finds the same marker skips the work, anything else starts out_dir over. The output
    must have one row per input row (checked).
    """
    import pyarrow.parquet as pq
    import ray.data

    from mathgpt.io import clear_dir, exists, filesystem, join, list_files, read_json, write_json

    fs, inner = filesystem(src)
    info = fs.get_file_info(inner)
    rows_in = pq.ParquetFile(inner, filesystem=fs).metadata.num_rows
    marker_body = {"input": src, "rows": rows_in, "bytes": info.size, "mtime_ns": info.mtime_ns, **stamp}
    marker = join(out_dir, "_COMPLETE.json")
    if exists(marker) and read_json(marker) == marker_body:
        return list_files(out_dir, (".parquet",))
    clear_dir(out_dir)
    ray.data.read_parquet(src, columns=columns).map_batches(
        udf, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format=batch_format,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max_actors)).write_parquet(out_dir)
    files = list_files(out_dir, (".parquet",))
    rows_out = sum(pq.ParquetFile(filesystem(f)[1], filesystem=filesystem(f)[0]).metadata.num_rows for f in files)
    if rows_out != rows_in:
        raise RuntimeError(f"{out_dir}: {udf.__name__} wrote {rows_out} rows for the {rows_in} rows of {src}")
    write_json(marker_body, marker)
    return files


def ragged_column(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A column of 1-D arrays that stays ragged: `np.array(list, dtype=object)` turns equal-length
    arrays (a one-row batch, say) into a 2-D block whose fixed tensor type cannot be unified with
    the variable-shaped blocks of other batches."""
    column = np.empty(len(arrays), dtype=object)
    for i, arr in enumerate(arrays):
        column[i] = arr
    return column
