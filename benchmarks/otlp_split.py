"""CPU seconds of each step of the OTLP block work, one thread, on trees before and after the
parse moved to :mod:`aiscale.loaders._otlp_parse`: parse, unnest (``flatten_requests``), and the
mapping (``_mapped_spans`` where the tree has it, else look-ups + fragments + ids and the spans
query apart).

Usage (run it once per tree, interleaved, and compare)::

    PYTHONPATH=TREE .venv/bin/python benchmarks/otlp_split.py FILE.jsonl [BLOCKS]
"""

from __future__ import annotations

import collections
import itertools
import pathlib
import sys
import time

import numpy as np
import pyarrow as pa

from aiscale.loaders import otlp
from aiscale.loaders._otlp_sql import parse_query, spans_query

try:
    from aiscale.loaders._otlp_parse import parse_lines
except ImportError:  # a tree before it: the tolerant query over the block
    parse_lines = None


def _parse(con, table: pa.Table, bounds: list[int]) -> pa.Table:
    if parse_lines is not None:
        return parse_lines(con, table, bounds)
    batches = [b for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) for b in table.slice(lo, hi - lo).to_batches()]
    con.register("otlp_block", pa.Table.from_batches(batches, schema=table.schema))
    return con.sql(parse_query("otlp_block")).to_arrow_table()


def main(path: pathlib.Path, limit: int | None) -> None:
    seconds: collections.Counter = collections.Counter()
    con, spans = otlp._connect(1), 0
    for line_numbers, offsets, data, _ in itertools.islice(otlp._blocks(path), limit):
        lines = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(line_numbers),
                                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        cuts = np.searchsorted(offsets, np.arange(otlp.BATCH_BYTES, offsets[-1], otlp.BATCH_BYTES))
        bounds = np.unique(np.concatenate([[0], cuts, [len(line_numbers)]])).tolist()
        started = time.process_time()
        parsed = _parse(con, pa.table({"line_no": line_numbers, "raw": lines}), bounds)
        seconds["parse"] += time.process_time() - started
        started = time.process_time()
        flat = otlp.flatten_requests(con, parsed)
        seconds["flatten"] += time.process_time() - started
        started = time.process_time()
        if hasattr(otlp, "_mapped_spans"):  # the mapping with the attributes JSON in Arrow
            spans += sum(batch.num_rows for batch in otlp._mapped_spans(con, flat))
            seconds["mapping"] += time.process_time() - started
            continue
        with_lookups, missing = otlp._with_lookups(con, flat)
        seconds["look-ups + fragments + ids"] += time.process_time() - started
        started = time.process_time()
        con.register("otlp_flat", with_lookups)
        for batch in con.sql(spans_query("otlp_flat", missing)).to_arrow_reader(100_000):
            spans += batch.num_rows
        seconds["spans query"] += time.process_time() - started
    load = open("/proc/loadavg").read().split()[0]
    print(f"{spans:,} spans: " + " | ".join(f"{k} {v:.2f}" for k, v in seconds.items())
          + f" | total {sum(seconds.values()):.2f} | load average {load}")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
