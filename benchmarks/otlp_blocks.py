"""CPU seconds (user, system) and page faults of reading an OTLP file into the loader's blocks
of lines (``otlp._blocks``, each block let go before the next, as the mapping threads do), and
of the file's SHA-256 beside it (``manifest.file_digest``), one thread.

Usage (run it once per tree, interleaved, and compare)::

    PYTHONPATH=TREE .venv/bin/python benchmarks/otlp_blocks.py FILE.jsonl [ROUNDS]
"""

from __future__ import annotations

import pathlib
import resource
import sys

from aiscale.loaders import otlp
from aiscale.store.manifest import file_digest


def _used() -> tuple[float, float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def _measure(label: str, work) -> None:
    before = _used()
    count = work()
    user, system, faults = (after - start for after, start in zip(_used(), before, strict=True))
    load = open("/proc/loadavg").read().split()[0]
    print(f"{label}: {count} | user {user:.2f} s, system {system:.2f} s, CPU {user + system:.2f} s, "
          f"{faults:,} page faults | load average {load}")


def main(path: pathlib.Path, rounds: int) -> None:
    for _ in range(rounds):
        _measure("blocks", lambda: f"{sum(len(block[0]) for block in otlp._blocks(path)):,} lines")
        _measure("digest", lambda: file_digest(path)[:16])


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2)
