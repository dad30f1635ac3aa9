"""Whole folders on local disk or object storage (s3://, gs://, file://) through pyarrow.fs.

A folder is *published* when a completion marker listing every file and its size is written after the
files (a reader never takes a half-uploaded model for a whole one), and *fetched* into a local cache
keyed by its URI and marker, so that every node loads a model from its own disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow.fs as pafs

from mathgpt.io import exists, filesystem, is_uri, join, read_json, write_json
from mathgpt.paths import build_once

log = logging.getLogger(__name__)
PUBLISHED = "_MATHGPT_COMPLETE.json"


def tree(path: str) -> dict[str, int]:
    """Relative path → size of every file under a local folder or URI prefix ({} when there is none)."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        return {}
    base = inner.rstrip("/") + "/"
    return {i.path[len(base):]: int(i.size) for i in fs.get_file_info(pafs.FileSelector(inner, recursive=True))
            if i.type == pafs.FileType.File}


def subdirs(path: str) -> list[str]:
    """The folders directly under a local folder or URI prefix, as paths or URIs, sorted by name."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        return []
    names = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(inner)) if i.type == pafs.FileType.Directory)
    return [join(path, n) for n in names]


def delete_dir(path: str) -> None:
    """Remove a local folder or every object under a URI prefix, if there is one."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type == pafs.FileType.Directory:
        fs.delete_dir(inner)


def missing_or_truncated(root: str, listed: dict[str, int]) -> str | None:
    """None when every listed file is under root with its size; else the first problem."""
    found = tree(root)
    for rel, size in listed.items():
        if rel not in found:
            return f"missing file {rel}"
        if found[rel] != size:
            return f"truncated file {rel} ({found[rel]} of {size} bytes)"
    return None


def marker_problem(root: str, marker: str) -> str | None:
    """None when the marker file under root (a local folder or URI) exists and every file it lists (its
    `files`: relative path → size) is there with its size; else why not."""
    path = join(root, marker)
    if not exists(path):
        return "no completion marker (never finished, or still being written)"
    try:
        listed = read_json(path)["files"]
    except (json.JSONDecodeError, KeyError) as err:
        return f"unreadable completion marker: {err}"
    return missing_or_truncated(root, listed)


def publish_dir(local_src: str, dest: str, move: bool = False) -> None:
    """Copy a finished local folder to `dest` (local or URI), replacing what was there; the marker goes last.

    Local destinations are swapped in with a rename; object stores get the files, then the marker. With
    `move`, a local source is moved rather than copied (a rename when it is on the destination's disk).
    """
    files = tree(local_src)
    if is_uri(dest):
        fs, inner = filesystem(dest)
        delete_dir(dest)
        fs.create_dir(inner, recursive=True)
        pafs.copy_files(str(Path(local_src).resolve()), inner, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs, use_threads=True)
    else:
        staging = f"{dest}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        if move:
            shutil.move(local_src, staging)
        else:
            shutil.copytree(local_src, staging)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(staging, dest)
    write_json({"files": files}, join(dest, PUBLISHED))


def published(path: str) -> str | None:
    """None when `path` is a complete published folder; else why it is not."""
    return marker_problem(path, PUBLISHED)


def fetch_dir(src: str, local_dest: str) -> None:
    """Download a folder (URI) into a local folder."""
    fs, inner = filesystem(src)
    Path(local_dest).mkdir(parents=True, exist_ok=True)
    pafs.copy_files(inner, str(Path(local_dest).resolve()), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem(), use_threads=True)


def cached_copy(uri: str, cache_root: Path) -> str:
    """A local copy of a published folder, downloaded once per node into `cache_root` (process-safe).

    The copy is keyed by the URI and its marker, so a re-published folder is fetched again; a folder that is
    not completely published is refused.
    """
    problem = published(uri)
    if problem:
        raise FileNotFoundError(f"{uri}: not a complete model folder: {problem}")
    marker = json.dumps(read_json(join(uri, PUBLISHED)), sort_keys=True)
    key = hashlib.sha1(f"{uri}\n{marker}".encode()).hexdigest()[:16]

    def fetch(tmp: Path) -> None:
        log.info("fetching %s into %s", uri, cache_root / "remote" / key)
        fetch_dir(uri, str(tmp))
        problem = missing_or_truncated(str(tmp), read_json(str(tmp / PUBLISHED))["files"])
        if problem:
            raise OSError(f"{uri}: download incomplete: {problem}")

    return str(build_once(cache_root / "remote" / key, PUBLISHED, fetch))
