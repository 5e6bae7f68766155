"""CPU seconds of each step of ``aiscale load`` outside the parse, in one process, to see where
a load's time goes beside the loader.

Usage (run it once per tree, interleaved, and compare)::

    PYTHONPATH=TREE .venv/bin/python benchmarks/load_steps.py FILE STORE_DIR

It loads FILE into a fresh STORE_DIR as ``aiscale load`` does and prints one line of CPU
seconds: imports (before the load starts), the file's digest, opening the store's checks, the
chunks the loader hands over (``arrow_chunk``, with the repeat-span set), validation, the
Parquet parts, the commit (moving parts, their checksums), the store checks after the load
(``StoreChecks.add``), the load summary, and the whole process. Steps in the caller's thread
are timed with ``time.thread_time`` (the loader parses the next block in a second thread
meanwhile), the steps after the parse with ``time.process_time``; "other" is what is left of
the process's CPU: mostly the loader's parse and mapping.
"""

from __future__ import annotations

import collections
import resource
import shutil
import sys
import time
from pathlib import Path

SECONDS: collections.Counter = collections.Counter()


def _timed(name: str, owner: object, attribute: str, clock=time.process_time) -> None:
    function = getattr(owner, attribute)

    def timed(*args, **kwargs):
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[name] += clock() - started

    setattr(owner, attribute, timed)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(path: Path, store: Path) -> None:
    from aiscale.loaders import otlp
    from aiscale.store import checks, ingest, load_summary, loading, trace_store

    SECONDS["imports"] = _cpu()
    _timed("digest", loading, "file_digest")
    _timed("part checksums", loading, "part_checksum")
    _timed("open checks", loading, "open_checks")
    _timed("chunk", otlp, "arrow_chunk", time.thread_time)
    _timed("validate", ingest, "_validated", time.thread_time)
    _timed("parquet", ingest, "_write", time.thread_time)
    try:
        from aiscale.store import day_parts  # one part per day and file
    except ImportError:
        pass
    else:
        _timed("parquet", day_parts.DayParts, "add", time.thread_time)
        _timed("parquet", day_parts.DayParts, "close", time.thread_time)
    _timed("commit", loading, "commit")
    _timed("checks", checks.StoreChecks, "add")
    _timed("summary", load_summary.StoreContents, "read_parts")
    shutil.rmtree(store, ignore_errors=True)
    summary = trace_store.TraceStore(store).load([path])
    total = _cpu()
    SECONDS["commit"] -= SECONDS["checks"] + SECONDS["part checksums"]  # commit calls them
    SECONDS["other (parse)"] = total - sum(SECONDS.values())
    SECONDS["total"] = total
    print(f"{summary.rows_read:,} rows: " + " | ".join(f"{k} {v:.2f}" for k, v in SECONDS.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
