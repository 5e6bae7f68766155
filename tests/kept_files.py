"""The files a store keeps in its ``cache/`` folder, for the cache tests: list them, tamper with them.

Examples
--------
>>> kept_files(type("Store", (), {"root": Path("/nowhere")})(), "facts")
[]
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aiscale.store import facts_cache


def kept_files(store, kind: str) -> list[Path]:
    """The store's kept ``kind`` files (``facts`` or ``calls``), sorted by name."""
    return sorted((store.root / facts_cache.FOLDER).glob(f"{kind}-*.parquet"))


def double_costs(path: Path) -> None:
    """Rewrite a kept file with every cost doubled (to see whether it is what is read)."""
    table = pq.read_table(path)
    i = table.schema.get_field_index("cost_usd")
    pq.write_table(table.set_column(i, "cost_usd", pa.compute.multiply(table["cost_usd"], 2.0)), path)
