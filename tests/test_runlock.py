"""M9: one run per run directory; a second run fails at once, naming the holder, and a killed run's lock goes."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mathgpt.config import load_recipe
from mathgpt.errors import StageError
from mathgpt.pipeline import run_pipeline
from mathgpt.runlock import hold_run_dir

ROOT = Path(__file__).resolve().parent.parent
HOLD = "import sys, time\nfrom mathgpt.runlock import hold_run_dir\nwith hold_run_dir(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(120)\n"


def test_a_second_run_on_a_run_dir_fails_at_once_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        recipe = load_recipe(ROOT / "recipes/demo.yaml", {"run_dir": str(run_dir)})
        start = time.monotonic()
        with pytest.raises(StageError, match=rf"run is in use by another run \(.*\"pid\": {holder.pid}"):
            run_pipeline(recipe)
        assert time.monotonic() - start < 10 and not (run_dir / "recipe.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    with hold_run_dir(str(run_dir)):  # the kernel dropped the killed holder's lock: nothing stale is left
        pass


LEASE_HOLD = "import sys\nfrom mathgpt.lease import hold_lease\nwith hold_lease(sys.argv[1], {'pid': %s}, renew_s=0.2):\n" \
          "    print('held', flush=True)\n    sys.stdin.read()\n"


def test_an_s3_run_dir_is_locked_renewed_taken_over_once_its_holder_died_and_released():
    """On s3:// the lock is a lease object (conditional writes on moto's S3 server): a second run fails at once
    naming the holder while the holder renews it; once the holder is killed, the lease is taken over after its
    TTL; a released lease is gone."""
    from tests.objstore import new_bucket, s3_server

    from mathgpt.lease import Lease

    with s3_server():
        run_dir = f"s3://{new_bucket()}/runs/demo"
        holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLD % "'holder'", f"{run_dir}/.lock"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            recipe = load_recipe(ROOT / "recipes/demo.yaml", {"run_dir": run_dir})
            start = time.monotonic()
            with pytest.raises(StageError, match=r"runs/demo is in use by another run \(\{\"pid\": \"holder\"\}"):
                run_pipeline(recipe)
            assert time.monotonic() - start < 10
            time.sleep(3)  # longer than the TTL below: only the holder's renewals keep its lease fresh
            with pytest.raises(StageError, match="in use by another run"):
                Lease(f"{run_dir}/.lock", {"pid": "second"}, ttl_s=1.5).acquire()
        finally:
            holder.kill()
            holder.wait()
        time.sleep(2.5)
        lease = Lease(f"{run_dir}/.lock", {"pid": "third"}, ttl_s=1.5, renew_s=0.2)
        lease.acquire()  # the dead holder's lease went stale: taken over
        with pytest.raises(StageError, match=r"\"third\""):
            Lease(f"{run_dir}/.lock", {"pid": "fourth"}, ttl_s=60).acquire()
        lease.release()
        assert Lease(f"{run_dir}/.lock", {"pid": "fifth"})._take_over() is False  # gone: acquire creates again
        with hold_run_dir(run_dir):  # released: the next run gets it at once, through the platform's own lock
            pass
        assert not lease.lost


def test_a_killed_run_on_this_host_leaves_an_s3_lock_that_the_next_run_takes_at_once():
    """A driver killed and resumed on the same machine (the usual case) need not wait out the lease's TTL: its
    lock names this host and a pid that is gone."""
    from tests.objstore import new_bucket, s3_server

    with s3_server():
        run_dir = f"s3://{new_bucket()}/runs/demo"
        holder = subprocess.Popen([sys.executable, "-c", HOLD, run_dir], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(StageError, match=rf"in use by another run \(.*\"pid\": {holder.pid}"):
                with hold_run_dir(run_dir):
                    pass
        finally:
            holder.kill()
            holder.wait()
        start = time.monotonic()
        with hold_run_dir(run_dir):
            assert time.monotonic() - start < 10


def test_a_gs_run_dir_is_locked_and_a_stale_lock_is_taken_over_by_one_run():
    """On gs:// the lock is a lease object made with GCS's conditional uploads (ifGenerationMatch), on
    fake-gcs-server: a second run fails at once naming the holder while the holder renews it; a stale lease is
    taken over, and of two runs that read the same stale version only one gets it; a released lease is gone."""
    from tests.objstore import fake_gcs_server, new_bucket

    from mathgpt.lease import Conflict, Lease

    with fake_gcs_server():
        run_dir = f"gs://{new_bucket('gs')}/runs/demo"
        lock = f"{run_dir}/.lock"
        holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLD % "'holder'", lock],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(StageError, match=r"runs/demo is in use by another run \(\{\"pid\": \"holder\"\}"):
                with hold_run_dir(run_dir):
                    pass
            time.sleep(3)  # longer than the TTL below: only the holder's renewals keep its lease fresh
            with pytest.raises(StageError, match="in use by another run"):
                Lease(lock, {"pid": "second"}, ttl_s=1.5).acquire()
        finally:
            holder.kill()
            holder.wait()
        time.sleep(2.5)
        first, second = Lease(lock, {"pid": "third"}, ttl_s=1.5), Lease(lock, {"pid": "late"}, ttl_s=1.5)
        _, _, stale = first.store.read()
        first.version = first.store.replace(first._body(), stale)  # what _take_over does with the stale version
        with pytest.raises(Conflict):  # the other run, a moment behind, is refused
            second.store.replace(second._body(), stale)
        with pytest.raises(StageError, match=r"\"third\""):
            Lease(lock, {"pid": "fourth"}, ttl_s=60).acquire()
        first.release()
        assert Lease(lock, {"pid": "fifth"})._take_over() is False  # gone: acquire creates again
        with hold_run_dir(run_dir):  # released: the next run gets it at once, through the platform's own lock
            pass
