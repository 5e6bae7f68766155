"""Loading files into a store: plan (skip known bytes), stage (in-process or two workers), commit.

A load writes into a temporary folder and moves parts into place before the manifest names
them, so an interrupted load leaves the store as it was.

A file's SHA-256 names it in the manifest (loading the same bytes again adds nothing). When no
other file of its size is loaded or named with it, it cannot be one the store holds, so its
digest is computed in a thread beside its parse (the file is read while the loader maps it);
parts are staged under a provisional stem and take the digest's name at commit. Otherwise,
and for stores whose entries do not record their size, the digest comes first, as before.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
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
    """Files to read: those whose bytes the store has not seen (in this call either).

    Each job is ``(path, digest, named, staging)``; ``digest`` is the file's SHA-256, or a
    :class:`PendingDigest` for a file of a size no other file has (see the module docstring),
    computed in one background thread, files in order.
    """
    known = read_manifest(root)["files"]
    sizes = [path.stat().st_size for path in files]
    counts = Counter(sizes) + Counter(entry.get("bytes", -1) for entry in known.values())
    unsized = any("bytes" not in entry for entry in known.values())  # written before sizes were kept
    jobs, seen, digests = [], set(), None
    for path, size in zip(files, sizes, strict=True):
        if unsized or counts[size] > 1:
            digest = file_digest(path)
            if digest in known or digest in seen:
                previous = known.get(digest, {})
                summary.files.append(FileLoad(str(path), previous.get("format"), "already loaded"))
                continue
            seen.add(digest)
            stem = digest[:16]
        else:
            digests = digests or ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiscale-digest")
            stem = uuid.uuid4().hex[:16]
            digest = PendingDigest(digests.submit(file_digest, path), stem)
        staging = root / f".load-{os.getpid()}-{stem}-{uuid.uuid4().hex[:8]}"
        jobs.append((path, digest, path in named, staging))
    if digests is not None:
        digests.shutdown(wait=False)  # the queued digests still run; remove_staging cancels them
    return jobs


@dataclass(frozen=True)
class PendingDigest:
    """A file's digest being computed in a thread, and the provisional stem of its staged parts."""

    future: Future
    stem: str


def _stem(digest: str | PendingDigest) -> str:
    """The name parts are staged under: the digest's first 16 digits, or a provisional one."""
    return digest.stem if isinstance(digest, PendingDigest) else digest[:16]


def _staged(path: Path, digest: str | PendingDigest, staging: Path, record: dict) -> dict:
    """A staged file's record with its digest (waited for: its error is raised here), staging
    folder, stem and size."""
    stem = _stem(digest)
    digest = digest.future.result() if isinstance(digest, PendingDigest) else digest
    return {**record, "digest": digest, "staging": staging, "stem": stem, "bytes": path.stat().st_size}


def stage_all(jobs: list[tuple], *, format: str | None, progress=None):
    """Stage each file, in two worker processes when the load is large enough to gain."""
    large = sum(path.stat().st_size for path, *_ in jobs) > PARALLEL_BYTES and len(jobs) > 1
    if not large:
        for path, digest, named, staging in jobs:
            started = time.perf_counter()
            on_chunk = (lambda rows, p=str(path): progress(p, rows)) if progress else None
            record = stage_file(path, _stem(digest), format, named, staging, on_chunk)
            yield path, _staged(path, digest, staging, record), time.perf_counter() - started
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=LOAD_WORKERS, mp_context=context,
                             initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        started = time.perf_counter()
        futures = [(path, digest, staging, pool.submit(stage_file, path, _stem(digest), format, named,
                                                       staging))
                   for path, digest, named, staging in jobs]
        for path, digest, staging, future in futures:
            record = future.result()
            if progress:
                progress(str(path), record.get("rows_read", 0))
            yield path, _staged(path, digest, staging, record), time.perf_counter() - started


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
    """Remove this load's own staging folders (after an error or an interruption); digests
    not yet started are cancelled."""
    for _, digest, _, staging in jobs:
        if isinstance(digest, PendingDigest):
            digest.future.cancel()
        shutil.rmtree(staging, ignore_errors=True)


def commit(root: Path, staging: Path, digest: str, record: dict, checks: StoreChecks) -> None:
    """Move a staged file's parts into the store, index them and update the store checks, then
    name them in the manifest (which is written last: until then the store is as it was).

    Parts staged under a provisional ``record["stem"]`` take the digest's first 16 digits. Their
    checksums are computed in a thread while the store checks run (both without the GIL)."""
    stem = record.pop("stem", digest[:16])
    try:
        moved = []
        for table in TABLES:
            staged = record["parts"][table]
            record["parts"][table] = [name.replace(stem, digest[:16], 1) for name in staged]
            for old, name in zip(staged, record["parts"][table], strict=True):
                target = root / table / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / table / old, target)
                moved.append(f"{table}/{name}")
        if (staging / "quarantine.jsonl").exists():
            (root / "quarantine").mkdir(exist_ok=True)
            os.replace(staging / "quarantine.jsonl", root / "quarantine" / f"{digest[:16]}.jsonl")
            record["quarantine"] = f"quarantine/{digest[:16]}.jsonl"
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiscale-checksums") as pool:
            sums = pool.submit(lambda: {key: part_checksum(root / key) for key in moved})
            manifest = read_manifest(root)
            checks.add(manifest, digest, record)
            if moved:
                record["checksums"] = sums.result()
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
