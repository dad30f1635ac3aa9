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


def _is_lost_worker(err: BaseException) -> bool:
    """A failure of the machinery (actor, worker, node, object), not of the user's code."""
    import ray.exceptions as rex

    lost = (rex.ActorDiedError, rex.ActorUnavailableError, rex.WorkerCrashedError, rex.NodeDiedError,
            rex.ObjectLostError, rex.OwnerDiedError)
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, lost):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def collect_exactly_once(requests: list[dict[str, Any]], pipeline: Callable[["ray.data.Dataset"], "ray.data.Dataset"],
                         max_pipeline_restarts: int = 3, key: str = "request_id") -> list[dict[str, Any]]:
    """Outputs of `pipeline(ray.data.from_items(rows))` for every request, one per `key`, in request order.

    `pipeline` must map each input row to exactly one output row carrying the same `key`.
    """
    import ray.data

    ids = [r[key] for r in requests]
    if len(set(ids)) != len(ids):
        raise StageError(f"duplicate {key}s in one engine run")
    wanted, results = set(ids), {}
    for attempt in range(max_pipeline_restarts + 1):
        todo = [r for r in requests if r[key] not in results]
        if not todo:
            break
        try:
            for row in pipeline(ray.data.from_items(todo)).iter_rows():
                rid = row[key]
                if rid not in wanted:
                    raise StageError(f"engine returned a row with unknown {key} {rid!r}")
                results.setdefault(rid, row)
        except Exception as err:  # noqa: BLE001 - only machinery losses are retried; the rest re-raised
            if not _is_lost_worker(err) or attempt == max_pipeline_restarts:
                raise
            log.warning("engine pipeline lost a worker (%s); rebuilding it for the %d rows still missing "
                        "(restart %d/%d)", type(err).__name__, len(wanted) - len(results), attempt + 1, max_pipeline_restarts)
    missing = [i for i in ids if i not in results]
    if missing:
        raise StageError(f"engine returned {len(results)} rows for {len(ids)} requests; missing e.g. {missing[:3]}")
    return [results[i] for i in ids]
