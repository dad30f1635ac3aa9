"""Run request rows through an engine pipeline and collect every output exactly once, surviving lost actors.

Ray Data restarts an engine actor that crashes (its tasks are retried), but an actor killed for
good (`ray.kill`, a lost node, an evicted pod) aborts the dataset. Outputs stream to the driver as
they finish, keyed by `request_id`; after such a loss the pipeline is rebuilt for the rows still
missing only, so no request is generated twice into the result and none is lost.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from mathgpt.errors import StageError

if TYPE_CHECKING:
    import ray.data

log = logging.getLogger(__name__)


_LOST = ("ActorDiedError", "ActorUnavailableError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError",
         "OwnerDiedError")


def _is_lost_worker(err: BaseException) -> bool:
    """A failure of the machinery (actor, worker, node, object), not of the user's code.

    The loss may be the error itself (an engine actor died) or what a UDF hit while calling another actor
    (a shared engine's Serve replica died under a request): Ray then reports a UserCodeException whose
    cause arrives at the driver only as the text of the remote traceback, so that text is checked too.
    """
    import ray.exceptions as rex

    lost = tuple(getattr(rex, name) for name in _LOST)
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, lost):
            return True
        if isinstance(e, (rex.RayTaskError, rex.UserCodeException)) and any(
                f"ray.exceptions.{name}" in str(e) for name in _LOST):
            return True
        stack += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    return False


def request_dataset(rows: list[dict[str, Any]], block_rows: int | None = None) -> "ray.data.Dataset":
    """The rows as a Dataset whose blocks hold `block_rows` rows each (the last one the remainder).

    An engine's `map_batches(batch_size=B)` bundles blocks until it has B rows, then cuts them into batches of
    B and a remainder: from_items' own blocks (1,024 rows in 200 blocks of 5) gave 104 batches where 64 hold
    them all, and a small batch costs an engine nearly a full batch's time. With blocks of B every batch but
    the last is full.
    """
    import ray.data

    full = len(rows) // block_rows if block_rows else 0
    if full < 1:
        return ray.data.from_items(rows)
    ds = ray.data.from_items(rows[:full * block_rows], override_num_blocks=full)
    rest = rows[full * block_rows:]
    return ds.union(ray.data.from_items(rest, override_num_blocks=1)) if rest else ds


def collect_exactly_once(requests: list[dict[str, Any]], pipeline: Callable[["ray.data.Dataset"], "ray.data.Dataset"],
                         max_pipeline_restarts: int = 3, key: str = "request_id",
                         on_row: Callable[[dict[str, Any]], None] | None = None,
                         keep: bool = True, block_rows: int | None = None) -> list[dict[str, Any]]:
    """Outputs of `pipeline(request_dataset(rows, block_rows))` for every request, one per `key`, in request
    order (`block_rows`: the engine's batch size, so that its batches are full).

    `pipeline` must map each input row to exactly one output row carrying the same `key`. `on_row` sees each
    output once, as it arrives; with `keep=False` outputs are handed to it only, and nothing is returned.
    """
    ids = [r[key] for r in requests]
    if len(set(ids)) != len(ids):
        raise StageError(f"duplicate {key}s in one engine run")
    wanted, seen, results = set(ids), set(), {}
    for attempt in range(max_pipeline_restarts + 1):
        todo = [r for r in requests if r[key] not in seen]
        if not todo:
            break
        try:
            for row in pipeline(request_dataset(todo, block_rows)).iter_rows():
                rid = row[key]
                if rid not in wanted:
                    raise StageError(f"engine returned a row with unknown {key} {rid!r}")
                if rid in seen:
                    continue
                seen.add(rid)
                if keep:
                    results[rid] = row
                if on_row is not None:
                    on_row(row)
        except Exception as err:  # noqa: BLE001 - only machinery losses are retried; the rest re-raised
            if not _is_lost_worker(err) or attempt == max_pipeline_restarts:
                raise
            log.warning("engine pipeline lost a worker (%s); rebuilding it for the %d rows still missing "
                        "(restart %d/%d)", type(err).__name__, len(wanted) - len(seen), attempt + 1, max_pipeline_restarts)
    missing = [i for i in ids if i not in seen]
    if missing:
        raise StageError(f"engine returned {len(seen)} rows for {len(ids)} requests; missing e.g. {missing[:3]}")
    return [results[i] for i in ids] if keep else []
