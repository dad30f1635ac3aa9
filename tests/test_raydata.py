"""Ray Data reads: the Parquet footer-reading pool is sized to the read, and a user's own setting wins."""

import os

import pyarrow as pa
import pyarrow.parquet as pq

from mathgpt.raydata import FOOTER_ACTORS_ENV, footer_actors, read_parquet


def test_footer_actors_grow_with_the_files_up_to_rays_default():
    assert [footer_actors(n) for n in (0, 1, 64, 65, 640, 10**6)] == [1, 1, 1, 2, 10, 32]


def test_read_parquet_reads_every_row_and_leaves_the_environment_as_it_was(ray_local, tmp_path, monkeypatch):
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"part-{i}.parquet"))
        pq.write_table(pa.table({"id": [f"{i}-{j}" for j in range(5)], "x": list(range(5))}), files[-1])
    monkeypatch.delenv(FOOTER_ACTORS_ENV, raising=False)
    rows = read_parquet(files, columns=["id"]).take_all()
    assert sorted(r["id"] for r in rows) == sorted(f"{i}-{j}" for i in range(3) for j in range(5))
    assert set(rows[0]) == {"id"} and FOOTER_ACTORS_ENV not in os.environ
    monkeypatch.setenv(FOOTER_ACTORS_ENV, "3")  # the user's own choice is kept
    assert read_parquet(files).count() == 15 and os.environ[FOOTER_ACTORS_ENV] == "3"
