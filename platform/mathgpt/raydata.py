"""One way to run a stateful row-batch UDF over in-memory rows on a Ray Data actor pool."""

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


def ragged_column(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A column of 1-D arrays that stays ragged: `np.array(list, dtype=object)` turns equal-length
    arrays (a one-row batch, say) into a 2-D block whose fixed tensor type cannot be unified with
    the variable-shaped blocks of other batches."""
    column = np.empty(len(arrays), dtype=object)
    for i, arr in enumerate(arrays):
        column[i] = arr
    return column
