"""Time one ``store.load`` in-process: CPU seconds, wall seconds and peak RSS of loading FILE into STORE.

Usage::

    .venv/bin/python benchmarks/load_into_store.py STORE FILE [LABEL]

Run it once into an empty store and once into a large one (files with other traces, e.g.
``aiscale simulate --traces 600 --seed 3 --format otlp``): the difference is what the load-time
checks (orphan spans, repeated spans, colliding traces) cost as the store grows.
"""

from __future__ import annotations

import resource
import sys
import time

from aiscale.store.trace_store import TraceStore


def main(argv: list[str]) -> None:
    store, path = TraceStore(argv[0]), argv[1]
    label = argv[2] if len(argv) > 2 else argv[0]
    cpu, wall = time.process_time(), time.perf_counter()
    summary = store.load([path])
    print(f"{label}: store.load cpu {time.process_time() - cpu:.2f} s wall {time.perf_counter() - wall:.1f} s, "
          f"rows {summary.rows_loaded:,}, orphans {summary.orphan_spans:,}, "
          f"colliding {len(summary.colliding_traces):,}, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main(sys.argv[1:])
