"""The files a store keeps in its ``cache/`` folder, for the cache tests: list them, tamper with them.

Examples
--------
>>> kept_files(type("Store", (), {"root": Path("/nowhere")})(), "facts")
[]
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from aiscale.store import facts_cache


def kept_files(store, kind: str) -> list[Path]:
    """The store's kept ``kind`` files (``facts`` as Parquet, ``calls`` as Arrow IPC), sorted by name."""
    return sorted(p for p in (store.root / facts_cache.FOLDER).glob(f"{kind}-*")
                  if p.suffix in (".parquet", ".arrow"))


def read_kept(path: Path) -> pa.Table:
    """A kept file, in its format."""
    return feather.read_table(path) if path.suffix == ".arrow" else pq.read_table(path)


def write_kept(table: pa.Table, path: Path) -> None:
    """Write ``table`` over a kept file, in its format."""
    if path.suffix == ".arrow":
        feather.write_feather(table, path, compression="lz4")
    else:
        pq.write_table(table, path)


def double_costs(path: Path) -> None:
    """Rewrite a kept file with every cost doubled (to see whether it is what is read)."""
    table = read_kept(path)
    i = table.schema.get_field_index("cost_usd")
    write_kept(table.set_column(i, "cost_usd", pa.compute.multiply(table["cost_usd"], 2.0)), path)
