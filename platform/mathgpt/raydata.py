"""Stateful row-batch UDFs on Ray Data actor pools, from Parquet files to Parquet files, once per input."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import ray.data

FOOTER_ACTORS_ENV = "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"
FILES_PER_FOOTER_ACTOR = 64
MAX_FOOTER_ACTORS = 32  # Ray Data's own default


def footer_actors(n_files: int) -> int:
    """Footer-reading actors for a read of N_FILES Parquet files: one per 64 files, at most Ray's default 32."""
    return max(1, min(MAX_FOOTER_ACTORS, -(-n_files // FILES_PER_FOOTER_ACTOR)))


def read_parquet(paths: list[str], columns: list[str] | None = None) -> "ray.data.Dataset":
    """`ray.data.read_parquet` of a list of files, with its footer-reading actors sized to the list.

    Ray Data 2.60 lists a Parquet read by reading every file's footer on a pool of actors, 32 by default, each a
    new worker process, for every read: measured on 2 cores, a read of one small file took 9-10 s, of which the
    listing 7.9 s (0.15 s of it CPU), and 2 s with one actor. The pool is sized when the read is planned, here;
    RAY_DATA_PARQUET_FOOTER_NUM_ACTORS, when set, still wins.
    """
    import ray.data

    from mathgpt.io import ray_paths

    paths, fs = ray_paths(list(paths))
    if FOOTER_ACTORS_ENV in os.environ:
        return ray.data.read_parquet(paths, columns=columns, filesystem=fs)
    os.environ[FOOTER_ACTORS_ENV] = str(footer_actors(len(paths)))
    try:
        return ray.data.read_parquet(paths, columns=columns, filesystem=fs)
    finally:
        del os.environ[FOOTER_ACTORS_ENV]


def write_parquet(ds: "ray.data.Dataset", out_dir: str) -> None:
    """`Dataset.write_parquet` to a local folder or URI, through the platform's filesystem."""
    from mathgpt.io import ray_paths

    (inner,), fs = ray_paths([out_dir])
    ds.write_parquet(inner, filesystem=fs)


def map_file_to_parquet(src: str, columns: list[str], udf: type, kwargs: dict[str, Any], out_dir: str,
                        stamp: dict[str, Any], concurrency: int | tuple[int, int] = (1, 4), batch_size: int = 256,
                        batch_format: str = "numpy") -> list[str]:
    """Stream a Parquet file (or a folder of them) through `udf` actors into Parquet files under out_dir, once.

    A marker written last records the inputs (path, size, mtime of each file, rows) and `stamp` (the UDF's
    settings); a re-run that finds the same marker skips the work, anything else starts out_dir over. Local
    inputs are named by their real path, so that runs reading one folder through links (the lab's cells) share
    the work. The output must have one row per input row (checked).
    """
    from mathgpt.io import (
        canonical,
        clear_dir,
        exists,
        files_stamp,
        join,
        list_files,
        parquet_rows,
        read_json,
        write_json,
    )

    src = canonical(src)
    inputs = list_files(src, (".parquet",))
    rows_in = parquet_rows(inputs)
    marker_body = {"input": src, "files": files_stamp(inputs), "rows": rows_in, **stamp}
    marker = join(out_dir, "_COMPLETE.json")
    if exists(marker) and read_json(marker) == marker_body:
        return list_files(out_dir, (".parquet",))
    clear_dir(out_dir)
    if rows_in:
        write_parquet(read_parquet(inputs, columns=columns).map_batches(
            udf, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format=batch_format,
            compute=actor_pool(concurrency)), out_dir)
    files = list_files(out_dir, (".parquet",)) if exists(out_dir) else []
    rows_out = parquet_rows(files)
    if rows_out != rows_in:
        raise RuntimeError(f"{out_dir}: {udf.__name__} wrote {rows_out} rows for the {rows_in} rows of {src}")
    write_json(marker_body, marker)
    return files


def actor_pool(concurrency: int | tuple[int, int]) -> Any:
    """A Ray Data actor pool: fixed size, or autoscaling between (min, max)."""
    import ray.data

    if isinstance(concurrency, tuple):
        return ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    return ray.data.ActorPoolStrategy(size=concurrency)


def ragged_column(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A column of 1-D arrays that stays ragged: `np.array(list, dtype=object)` turns equal-length
    arrays (a one-row batch, say) into a 2-D block whose fixed tensor type cannot be unified with
    the variable-shaped blocks of other batches."""
    column = np.empty(len(arrays), dtype=object)
    for i, arr in enumerate(arrays):
        column[i] = arr
    return column
