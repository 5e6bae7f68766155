"""Store checks kept current at each load: repeated spans, orphan spans, colliding traces.

Each loaded file gets a small trace index, ``index/<hash>.parquet``: one row per (trace,
part) with the source that claims the trace (``spans:<source>`` or ``facts:<part>``). A
load then reads its own new parts, the index, and only the old span parts that hold a
trace the load touches (none when its traces are new), never the whole store:

* repeated spans: new spans joined with the old spans of the touched traces;
* orphan spans (parent in no loaded file) are a property of each trace, so the stored
  count moves by the touched traces' count after the load minus before it;
* colliding traces (claimed by two sources) are found in the index.

A store written before the index existed gets it built once, at its next load.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with StoreChecks(Path(tempfile.mkdtemp()), {"files": {}}) as checks:
...     checks.colliding()
[]
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from aiscale.facts.on_duckdb import bound_memory, quiet_progress
from aiscale.store.manifest import list_parts

INDEX = "index"
_INDEX_COLUMNS = "trace_id VARCHAR, claim VARCHAR, part VARCHAR"
_INDEX_SCHEMA = pa.schema([("trace_id", pa.string()), ("claim", pa.string()), ("part", pa.string())])


def orphans_sql(view: str, *, dedupe: bool) -> str:
    """SQL counting the spans of ``view`` whose parent is not among its spans (each span once).

    With ``dedupe`` a span carried by several files counts once, in the copy the store's
    ``spans`` view keeps (first by source_file, source_row, part path).
    """
    distinct = (f"SELECT trace_id, span_id, parent_id FROM (SELECT trace_id, span_id, parent_id, "
                f"row_number() OVER (PARTITION BY trace_id, span_id ORDER BY source_file, "
                f"source_row, filename) AS rn FROM {view}) WHERE rn = 1"
                if dedupe else f"SELECT trace_id, span_id, parent_id FROM {view}")
    return (f"WITH d AS MATERIALIZED ({distinct}) "
            "SELECT count(*) FROM d c WHERE parent_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM d p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_id)")


def count_orphans(root: Path, manifest: dict) -> int:
    """Spans whose parent span is in no loaded file, over the whole store (one full read)."""
    spans = list_parts(root, manifest, "spans")
    if not spans:
        return 0
    with _connect() as con:
        con.read_parquet(spans, filename=True).create_view("spans_all")  # paths as values
        return int(con.execute(orphans_sql("spans_all", dedupe=manifest.get("spans_may_repeat", False)))
                   .fetchall()[0][0])


class StoreChecks:
    """The trace index of a store, held for one load; :meth:`add` checks each committed file.

    Parameters
    ----------
    root : Path
        The store folder.
    manifest : dict
        The manifest as read at the start of the load; entries without an index (written
        before it existed, or by another writer) get one in ``index/``, and the
        ``orphan_spans`` count is then taken once in full, as it is when missing.
        The caller writes the manifest back.
    """

    def __init__(self, root: Path, manifest: dict):
        self.root = Path(root)
        self.con = _connect()
        self.con.execute(f"CREATE TABLE idx ({_INDEX_COLUMNS})")
        self.changed = False
        for digest, entry in manifest["files"].items():
            if not entry.get("index") or not (self.root / entry["index"]).is_file():
                entry["index"] = self._write_index(digest, entry)
                self.changed = True
        indexes = [str(self.root / e["index"]) for e in manifest["files"].values()]
        if indexes:
            self.con.execute("INSERT INTO idx SELECT trace_id, claim, part FROM read_parquet($files)",
                             {"files": indexes})
        if self.changed or "orphan_spans" not in manifest:  # files another writer added: count anew
            manifest["orphan_spans"] = count_orphans(self.root, manifest)
            self.changed = True

    def __enter__(self) -> StoreChecks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the index (the files in ``index/`` stay)."""
        self.con.close()

    def add(self, manifest: dict, digest: str, entry: dict) -> None:
        """Index a file whose parts are in place and update ``manifest`` for it.

        Sets ``entry["index"]``, ``manifest["spans_may_repeat"]`` and ``manifest["orphan_spans"]``.
        ``manifest`` must not yet hold ``entry``.
        """
        new_parts = [str(self.root / "spans" / name) for name in entry.get("parts", {}).get("spans", [])]
        was_repeating = bool(manifest.get("spans_may_repeat", False))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiscale-orphans") as pool:
            # the new spans' own orphans, counted while the index is written: the delta when no
            # stored part holds one of their traces (the usual case), else not used
            alone = pool.submit(_orphans_of, self.con.cursor(), new_parts, dedupe=was_repeating) \
                if new_parts else None
            entry["index"] = self._write_index(digest, entry)
            con = self.con
            con.execute("CREATE OR REPLACE TEMP TABLE new_idx AS SELECT * FROM read_parquet($f)",
                        {"f": str(self.root / entry["index"])})
            con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT o.trace_id, o.part FROM idx o "
                        "JOIN (SELECT DISTINCT trace_id FROM new_idx WHERE claim LIKE 'spans:%') n "
                        "USING (trace_id) WHERE o.claim LIKE 'spans:%'")
            old_parts = self.old_parts()
            repeats = bool(old_parts and new_parts) and self._repeats(old_parts, new_parts)
            manifest["spans_may_repeat"] = was_repeating or repeats
            if repeats and not was_repeating:  # every trace is now counted with repeats removed
                manifest["orphan_spans"] = count_orphans(self.root, {**manifest, "files": {
                    **manifest["files"], digest: entry}})
            elif new_parts:
                manifest["orphan_spans"] += (self._orphan_delta(old_parts, new_parts, dedupe=was_repeating)
                                             if old_parts else alone.result())
            if alone is not None:
                alone.result()  # its error, if any, is raised here
        con.execute("INSERT INTO idx SELECT * FROM new_idx")

    def old_parts(self) -> list[str]:
        """The stored span parts holding a trace the file being added touches (after :meth:`add`)."""
        rows = self.con.execute("SELECT DISTINCT part FROM touched ORDER BY part").fetchall()
        parts = [str(self.root / part) for (part,) in rows]
        if missing := [p for p in parts if not Path(p).is_file()]:
            raise FileNotFoundError(
                f"{self.root}: {len(missing)} part(s) named by the manifest are missing (first: {missing[0]}); "
                f"run `aiscale verify --store {self.root}` to see which loaded files to reload.")
        return parts

    def colliding(self) -> list[str]:
        """Trace ids that different sources claim: spans from two formats, or a span-less facts
        row from one file beside spans or facts rows from another. Never merged silently: the
        load summary names them."""
        rows = self.con.execute("SELECT trace_id FROM idx GROUP BY trace_id "
                                "HAVING count(DISTINCT claim) > 1 ORDER BY trace_id").fetchall()
        return [r[0] for r in rows]

    def _views(self, old_parts: list[str], new_parts: list[str]) -> None:
        con = self.con
        con.read_parquet(new_parts, filename=True).create_view("new_spans")  # paths as values
        con.read_parquet(old_parts, filename=True).create_view("old_read")
        con.execute("CREATE OR REPLACE TEMP VIEW old_spans AS SELECT * FROM old_read "
                    "WHERE trace_id IN (SELECT trace_id FROM touched)")

    def _repeats(self, old_parts: list[str], new_parts: list[str]) -> bool:
        self._views(old_parts, new_parts)
        return self.con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM new_spans n JOIN old_spans o "
            "ON n.trace_id = o.trace_id AND n.span_id = o.span_id LIMIT 1)").fetchall()[0][0] > 0

    def _orphan_delta(self, old_parts: list[str], new_parts: list[str], *, dedupe: bool) -> int:
        """Orphans of the touched traces after the file minus before it (untouched: unchanged)."""
        con, columns = self.con, "trace_id, span_id, parent_id, source_file, source_row, filename"
        if not old_parts:
            return _orphans_of(con.cursor(), new_parts, dedupe=dedupe)
        self._views(old_parts, new_parts)
        before = con.execute(orphans_sql("old_spans", dedupe=dedupe)).fetchall()[0][0]
        con.execute(f"CREATE OR REPLACE TEMP VIEW both_spans AS SELECT {columns} FROM old_spans "
                    f"UNION ALL SELECT {columns} FROM new_spans")
        after = con.execute(orphans_sql("both_spans", dedupe=dedupe)).fetchall()[0][0]
        return int(after - before)

    def _write_index(self, digest: str, entry: dict) -> str:
        """Write one file's trace index from its parts in the store; return its relative path."""
        (self.root / INDEX).mkdir(exist_ok=True)
        name = f"{INDEX}/{digest[:16]}.parquet"
        selects, values = [], {"prefix": len(str(self.root)) + 2}
        parts = entry.get("parts", {})
        one = {"files": {digest: entry}}  # list_parts names a missing part and `aiscale verify`
        if parts.get("spans"):
            values["spans"] = list_parts(self.root, one, "spans")
            selects.append("SELECT DISTINCT trace_id, 'spans:' || coalesce(source, '') AS claim, "
                           "substr(filename, $prefix) AS part FROM read_parquet($spans, filename=true)")
        if parts.get("facts"):
            values["facts"] = list_parts(self.root, one, "facts")
            selects.append("SELECT DISTINCT trace_id, 'facts:' || substr(filename, $prefix) AS claim, "
                           "substr(filename, $prefix) AS part FROM read_parquet($facts, filename=true)")
        table = (self.con.sql(" UNION ALL ".join(selects), params=values).to_arrow_table().cast(_INDEX_SCHEMA)
                 if selects else _INDEX_SCHEMA.empty_table())
        tmp = self.root / INDEX / f".{digest[:16]}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(self.root / name)
        return name


def _orphans_of(con: duckdb.DuckDBPyConnection, parts: list[str], *, dedupe: bool) -> int:
    """The orphan spans of ``parts`` alone, counted on ``con`` (a cursor of the checks'
    connection, closed after: it can run in a thread of its own; its view has a name of its
    own, as a cursor's views are the connection's)."""
    with con:
        con.read_parquet(parts, filename=True).create_view("new_spans_alone")
        return int(con.execute(orphans_sql("new_spans_alone", dedupe=dedupe)).fetchall()[0][0])


CHECKS_MEMORY_LIMIT = "256MB"  # the checks spill beyond it: a load's peak memory is flat in its size


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    quiet_progress(con)
    bound_memory(con, CHECKS_MEMORY_LIMIT)
    return con
