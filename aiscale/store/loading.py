"""Loading files into a store: plan (skip known bytes), stage (in-process or two workers), commit.

A load writes into a temporary folder and moves parts into place before the manifest names
them, so an interrupted load leaves the store as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from aiscale.store.checks import StoreChecks
from aiscale.store.ingest import stage_file
from aiscale.store.load_summary import FileLoad, LoadSummary
from aiscale.store.manifest import (
    TABLES,
    file_digest,
    part_checksum,
    read_manifest,
    write_manifest,
)

PARALLEL_BYTES = 64 * 1024 * 1024  # below this a load runs in-process (no worker start-up)
LOAD_WORKERS = 2


def plan(root: Path, files: list[Path], named: set[Path], summary: LoadSummary) -> list[tuple]:
    """Files to read: those whose bytes the store has not seen (in this call either)."""
    known = read_manifest(root)["files"]
    jobs, seen = [], set()
    for path in files:
        digest = file_digest(path)
        if digest in known or digest in seen:
            previous = known.get(digest, {})
            summary.files.append(FileLoad(str(path), previous.get("format"), "already loaded"))
            continue
        seen.add(digest)
        staging = root / f".load-{os.getpid()}-{digest[:16]}-{uuid.uuid4().hex[:8]}"
        jobs.append((path, digest, path in named, staging))
    return jobs


def stage_all(jobs: list[tuple], *, format: str | None, progress=None):
    """Stage each file, in two worker processes when the load is large enough to gain."""
    large = sum(path.stat().st_size for path, *_ in jobs) > PARALLEL_BYTES and len(jobs) > 1
    if not large:
        for path, digest, named, staging in jobs:
            started = time.perf_counter()
            on_chunk = (lambda rows, p=str(path): progress(p, rows)) if progress else None
            record = stage_file(path, digest, format, named, staging, on_chunk)
            yield path, {**record, "digest": digest, "staging": staging}, time.perf_counter() - started
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=LOAD_WORKERS, mp_context=context,
                             initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        started = time.perf_counter()
        futures = [(path, digest, staging, pool.submit(stage_file, path, digest, format, named, staging))
                   for path, digest, named, staging in jobs]
        for path, digest, staging, future in futures:
            record = future.result()
            if progress:
                progress(str(path), record.get("rows_read", 0))
            yield path, {**record, "digest": digest, "staging": staging}, time.perf_counter() - started


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """In a worker: exit as soon as the loading process is gone (killed, not only stopped).

    Started as the worker pool's initializer; a daemon thread polls the parent's pid.
    """
    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid and not _alive(parent_pid):
                os._exit(1)

    threading.Thread(target=watch, name="aiscale-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_owner(folder: Path) -> int | None:
    """The pid in a staging folder's name (``.load-PID-...``), None for other names."""
    parts = folder.name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() and len(parts[1]) < 10 else None


def clean_interrupted(root: Path) -> None:
    """Remove staging folders left by loads whose process is gone (never a live load's)."""
    for leftover in root.glob(".load-*"):
        owner = staging_owner(leftover)
        if owner is None or (owner != os.getpid() and not _alive(owner)):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_staging(jobs: list[tuple]) -> None:
    """Remove this load's own staging folders (after an error or an interruption)."""
    for *_, staging in jobs:
        shutil.rmtree(staging, ignore_errors=True)


def commit(root: Path, staging: Path, digest: str, record: dict, checks: StoreChecks) -> None:
    """Move a staged file's parts into the store, index them and update the store checks, then
    name them in the manifest (which is written last: until then the store is as it was)."""
    try:
        for table in TABLES:
            for name in record["parts"][table]:
                target = root / table / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / table / name, target)
                record.setdefault("checksums", {})[f"{table}/{name}"] = part_checksum(target)
        if (staging / "quarantine.jsonl").exists():
            (root / "quarantine").mkdir(exist_ok=True)
            os.replace(staging / "quarantine.jsonl", root / "quarantine" / f"{digest[:16]}.jsonl")
            record["quarantine"] = f"quarantine/{digest[:16]}.jsonl"
        manifest = read_manifest(root)
        checks.add(manifest, digest, record)
        manifest["files"][digest] = record
        write_manifest(root, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def open_checks(root: Path) -> StoreChecks:
    """The store's trace index for one load (built once for a store that lacks it)."""
    manifest = read_manifest(root)
    checks = StoreChecks(root, manifest)
    if checks.changed:
        write_manifest(root, manifest)
    return checks


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder`` (both resolved; a store never loads its own parts)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
