"""The trace store: canonical tables as Parquet files in a folder, queried with DuckDB.

Layout::

    STORE/manifest.json          files loaded (by content hash) and their counts
    STORE/spans/day=YYYY-MM-DD/<hash>-<n>.parquet   (day of span start; day=unknown)
    STORE/traces/<hash>-<n>.parquet
    STORE/facts/<hash>-<n>.parquet       per-trace rows of span-less sources
    STORE/quarantine/<hash>.jsonl        rows that could not be used, with file, line, reason
    STORE/index/<hash>.parquet           each file's traces and parts, for the load-time checks
    STORE/cache/facts-<key>.parquet      facts already rolled up (see :mod:`aiscale.store.facts_cache`)

A file is identified by the SHA-256 of its bytes: loading it again adds nothing. A load
writes into a temporary folder and moves parts into place before the manifest names
them, so an interrupted load leaves the store as it was; only parts the manifest names
are ever read.

Examples
--------
>>> import tempfile, pandas as pd
>>> store = TraceStore(tempfile.mkdtemp())
>>> store.facts().shape[0]
0
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from aiscale import schema
from aiscale.facts.frame import finish_table, to_pandas
from aiscale.facts.on_duckdb import bound_memory, quiet_progress
from aiscale.loaders import expand_paths
from aiscale.store import facts_cache, loading
from aiscale.store.facts_file import (
    KEYS_SQL,
    export_facts_parquet,
    lost_calls,
    spans_view_sql,
    with_facts_file,
)
from aiscale.store.load_summary import FileLoad, LoadSummary, StoreContents
from aiscale.store.lock import load_lock
from aiscale.store.manifest import TABLES, list_parts, read_manifest, write_manifest
from aiscale.store.safe_output import neutralise_formulas, write_atomically
from aiscale.store.span_groups import AddedRows

if TYPE_CHECKING:
    import pandas as pd

Engine = Literal["duckdb", "spark"]


class TraceStore:
    """A folder of canonical Parquet tables, queried in-process with DuckDB.

    Parameters
    ----------
    root : str or Path
        The store folder; created when missing.

    Examples
    --------
    >>> import tempfile
    >>> TraceStore(tempfile.mkdtemp()).spans().columns[0]
    'trace_id'
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root}: the store must be a folder, but a file is there.")
        self.root.mkdir(parents=True, exist_ok=True)
        self.last_load: LoadSummary | None = None
        self._memo: dict = {}  # the last priced calls and rates read, under their keys
        self._locks: dict[str, threading.RLock] = {}

    def __repr__(self) -> str:
        manifest = self.manifest()
        return f"<aiscale.TraceStore at {str(self.root)!r}: {len(manifest['files'])} files loaded>"

    def manifest(self) -> dict:
        """Return the manifest: ``{"files": {sha256: {path, format, rows..., parts}}}``."""
        return read_manifest(self.root)

    def write_manifest(self, manifest: dict) -> None:
        """Replace the manifest atomically."""
        write_manifest(self.root, manifest)

    def parts(self, table: str, *, days: tuple[str, str] | None = None) -> list[str]:
        """Return the Parquet files of one table that the manifest names, sorted.

        ``days=("2025-01-01", "2025-01-07")`` keeps the span parts of those days (inclusive)
        and of spans without a timestamp; other tables are not partitioned.
        """
        return list_parts(self.root, self.manifest(), table, days=days)

    # -- loading ----------------------------------------------------------------------------
    def load(self, paths: Iterable[str | Path] | str | Path, *, format: str | None = None,
             progress: Callable[[str, int], None] | None = None, wait: bool = True,
             on_wait: Callable[[str], None] | None = None) -> LoadSummary:
        """Load export files (or folders of them) into the store.

        Loads into one store run one at a time (an OS file lock): a second load waits for
        the first, or raises :class:`~aiscale.store.lock.StoreBusyError` with ``wait=False``.

        Parameters
        ----------
        paths : path or list of paths
            Files or folders; folders are searched recursively and files no loader
            recognises are skipped (and listed), while a named file must be recognised.
            Store folders met while walking (this one included) are skipped.
        format : str, optional
            Force one loader instead of detecting each file's format.
        progress : callable, optional
            ``progress(path, rows)``: called as rows are read (per chunk when files are read
            in this process, per file when two workers read them); the CLI draws a bar.
        wait : bool, default=True
            Wait for another load into this store to finish (False: raise at once).
        on_wait : callable, optional
            Called once with a message when the call has to wait.

        Returns
        -------
        LoadSummary
            Rows read / loaded / quarantined per file; also kept as ``store.last_load``.
        """
        named = {Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)}
        files = [f for f in expand_paths(list(named)) if not loading.is_inside(f, self.root)]
        with load_lock(self.root, wait=wait, on_wait=on_wait):
            loading.clean_interrupted(self.root)
            summary = LoadSummary(files=[])
            jobs = loading.plan(self.root, files, named, summary)
            counted: list[AddedRows] = []  # each file's rows as staged: the contents without a read
            checks = loading.open_checks(self.root)
            try:
                for path, record, seconds in loading.stage_all(jobs, format=format, progress=progress):
                    if record["status"] == "skipped":
                        summary.files.append(FileLoad(str(path), None, "skipped", reason=record["reason"]))
                        continue
                    examples, rows = record.pop("examples"), record.pop("added", None)
                    loading.commit(self.root, record.pop("staging"), record.pop("digest"), record, checks)
                    if rows is None:  # staged without counting (not by stage_chunks): read its parts
                        rows = AddedRows.read_parts(*([str(self.root / table / n) for n in record["parts"][table]]
                                                      for table in ("spans", "facts")))
                    counted.append(rows)
                    summary.files.append(FileLoad(
                        str(path), record["format"], "loaded", rows_read=record["rows_read"],
                        rows_loaded=record["rows_loaded"], rows_quarantined=record["rows_quarantined"],
                        unit=record["unit"], seconds=seconds, quarantine_examples=examples))
                summary.orphan_spans = self.manifest().get("orphan_spans", 0)
                summary.colliding_traces = checks.colliding()
            finally:
                checks.close()
                loading.remove_staging(jobs)
            summary.contents = StoreContents.from_rows(counted)
        self.last_load = summary
        return summary

    @property
    def spans_may_repeat(self) -> bool:
        """True when two loaded files carried the same span (queries then keep one copy)."""
        return bool(self.manifest().get("spans_may_repeat", False))

    # -- reading ----------------------------------------------------------------------------
    def connect(self, *, days: tuple[str, str] | None = None) -> duckdb.DuckDBPyConnection:
        """Return an in-memory DuckDB connection with views ``spans``, ``traces``, ``facts_raw``.

        ``spans`` holds one row per (trace_id, span_id) even when two files both carried it;
        with ``days``, only the span parts of those days (see :meth:`parts`).
        """
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        quiet_progress(con)
        bound_memory(con)
        for table in TABLES:
            parts = self.parts(table, days=days)  # only spans are partitioned by day
            view = "facts_raw" if table == "facts" else table
            if parts:
                con.read_parquet(parts, filename=True).create_view(f"{view}_all")  # paths as values
            else:
                con.register(f"{view}_empty", schema.schema_of(table).empty_table())
                con.execute(f"CREATE VIEW {view}_all AS SELECT *, '' AS filename FROM {view}_empty")
        con.execute(spans_view_sql(self.spans_may_repeat))
        con.execute("CREATE VIEW traces AS SELECT * EXCLUDE (filename) FROM traces_all")
        con.execute("CREATE VIEW facts_raw AS SELECT * EXCLUDE (rn, filename) FROM (SELECT *, "  # one row per trace
                    "row_number() OVER (PARTITION BY trace_id ORDER BY filename) AS rn "
                    "FROM facts_raw_all) WHERE rn = 1")
        return con

    def sql(self, query: str) -> pd.DataFrame:
        """Run a DuckDB SQL query over the views ``spans``, ``traces`` and ``facts_raw``."""
        with self.connect() as con:
            return con.execute(query).df()

    def spans(self, *, columns: list[str] | None = None, trace_ids: list[str] | None = None,
              prices: str | Path | pd.DataFrame | None = None, priced: bool = True) -> pd.DataFrame:
        """Return spans as a pandas frame, ordered by trace and start, priced as the facts are.

        Parameters
        ----------
        columns : list of str, optional
            Canonical columns to read (default all; leaving out ``attributes`` saves most
            of the memory on large stores).
        trace_ids : list of str, optional
            Only these traces.
        prices : path or DataFrame, optional
            A price sheet that overrides genai-prices (the same one given to :meth:`facts`).
        priced : bool, default=True
            Add ``cost_usd`` (null when unpriced and on other spans) and ``priced``: the
            prices of :meth:`calls`, so that per trace they sum to the facts' cost.
        """
        wanted = list(columns) if columns else list(schema.SPAN_COLUMNS)
        unknown = sorted(set(wanted) - set(schema.SPAN_COLUMNS))
        if unknown:
            raise ValueError(f"The value for `columns` must be canonical span columns "
                             f"{list(schema.SPAN_COLUMNS)}, but {unknown} was passed.")
        from aiscale.store.span_read import read_spans

        with self.connect() as con:  # LLM spans take the prices of the kept calls
            return read_spans(con, wanted, trace_ids=trace_ids, priced=priced, rates=lambda: self.rates(prices=prices),
                              calls=self.calls(prices=prices, trace_ids=trace_ids) if priced else None)

    def calls(self, *, prices: str | Path | pd.DataFrame | None = None, since=None, until=None,
              trace_ids: list[str] | None = None, threads: int | None = None) -> pa.Table:
        """The priced LLM calls a report reads (Arrow, kept): :func:`~aiscale.store.calls_read.cached_calls`
        (``threads`` caps DuckDB's threads when they are built)."""
        from aiscale.facts.window import window_days
        from aiscale.store.calls_read import cached_calls

        days = window_days(since, until)[2]  # since/until choose the day parts, as for the facts
        return cached_calls(self, prices=prices, days=days, memo=self._memo, trace_ids=trace_ids,
                            lock=self.reading("calls"), threads=threads)

    def reading(self, kind: str) -> threading.RLock:
        """The lock of one kept table (``"calls"``, ``"rates"``, ``"loops"``): one thread reads or
        builds it at a time, so a report reading ahead in a background thread
        (:mod:`aiscale.report.prefetch`) and a section asking for it meanwhile build it once. A
        thread may take it again while it holds it (reading ahead claims the loop table first)."""
        return self._locks.setdefault(kind, threading.RLock())

    def rates(self, *, prices: str | Path | pd.DataFrame | None = None) -> pd.DataFrame | None:
        """The rate table of every (provider, model, day) of the store's LLM calls (None when none),
        kept for the store's state and the sheet's rows (a load or another sheet reads it again)."""
        key = (facts_cache.manifest_bytes(self.root), facts_cache.sheet_fingerprint(prices))
        with self.reading("rates"):
            if self._memo.get("rates", (None,))[0] != key:  # the facts and the calls share one look-up
                from aiscale.pricing.rates import rate_table

                keys = self.sql(KEYS_SQL)
                self._memo["rates"] = (key, rate_table(keys, prices=prices) if len(keys) else None)
            return self._memo["rates"][1]

    def traces(self) -> pd.DataFrame:
        """Return one row per trace (trace rows merged across files)."""
        from aiscale.facts.trace_rows_sql import merged_traces_sql

        columns = ", ".join(schema.TRACE_COLUMNS)
        return self.sql(f"SELECT {columns} FROM ({merged_traces_sql('traces')}) ORDER BY trace_id")

    def quarantine(self) -> pd.DataFrame:
        """Return every quarantined row: source_file, source_row, reason, excerpt."""
        import pandas as pd

        files = sorted((self.root / "quarantine").glob("*.jsonl"))
        if not files:
            return pd.DataFrame(columns=["source_file", "source_row", "reason", "excerpt"])
        return pd.concat([pd.read_json(f, lines=True, dtype=False) for f in files], ignore_index=True)

    def lost_llm_calls(self) -> pd.DataFrame:
        """LLM calls quarantined at load whose trace is known: ``trace_id, lost_llm_calls``.

        The rollup counts them as unpriced calls, so those traces' cost is unknown, not 0.
        """
        import pandas as pd

        found = lost_calls(self.root)
        if found is None:
            return pd.DataFrame({"trace_id": pd.Series(dtype="string"), "lost_llm_calls": pd.Series(dtype="int64")})
        return found.to_pandas()

    def facts(self, *, engine: Engine = "duckdb", prices: str | Path | pd.DataFrame | None = None,
              since: str | pd.Timestamp | None = None, until: str | pd.Timestamp | None = None,
              ) -> pd.DataFrame:
        """Return trace facts: one row per trace, spans rolled up plus span-less fact rows.

        Parameters
        ----------
        engine : {"duckdb", "spark"}, default="duckdb"
            Which engine runs the rollup; both give the same rows.
        prices : path or DataFrame, optional
            A price sheet that overrides genai-prices for the models it names.
        since, until : str or Timestamp, optional
            Keep traces that started in ``[since, until)``; only the span partitions of
            those days (and a day either side, for traces crossing midnight) are read.

        Returns
        -------
        pandas.DataFrame
            Columns of :data:`aiscale.schema.FACT_COLUMNS`, sorted by trace_id.

        Notes
        -----
        The DuckDB rollup's facts are kept in the store's ``cache/`` folder, keyed on the
        manifest, the price sheet, the days read and the code (:mod:`aiscale.store.facts_cache`):
        the same store state and sheet give the same facts without rolling up again.
        """
        if engine not in ("duckdb", "spark"):
            raise ValueError(f"The value for `engine` must be one of ['duckdb', 'spark'], but {engine!r} was passed.")
        from aiscale.facts.window import in_window, window_days

        low, high, days = window_days(since, until)
        if engine == "spark":
            parts = {name: self.parts(name, days=days) for name in TABLES}  # raises when one is missing
            facts = to_pandas(self._rolled_up_on_spark(parts, prices))
        else:
            facts = to_pandas(with_facts_file(self.root, facts_cache.read_facts, prices=prices, days=days,
                                              rates=lambda: self.rates(prices=prices)))
        if days is None:
            return facts
        return facts.loc[in_window(facts["started_at"], low, high)].reset_index(drop=True)

    def _rolled_up_on_spark(self, parts: dict[str, list[str]], prices) -> pa.Table:
        """Spans rolled up to facts on Spark, plus the span-less fact rows (Arrow)."""
        from aiscale.facts.spark import rollup_on_spark

        rolled = rollup_on_spark({name: parts[name] for name in ("spans", "traces")}, self.rates(prices=prices),
                                 root=str(self.root), dedupe=self.spans_may_repeat, lost=self.lost_llm_calls())
        return finish_table(rolled, self.sql("SELECT * FROM facts_raw"))

    def export_facts(self, out: str | Path, *, raw_csv: bool = False, **kwargs) -> Path:
        """Write trace facts to ``out`` (.csv or .parquet) atomically and return the path.

        In CSV, text cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return get
        a leading ``'`` so a spreadsheet shows them instead of running them; ``raw_csv=True``
        writes them as they are. Parquet from DuckDB is written batch by batch (memory flat
        in the number of traces).
        """
        out = Path(out)
        if out.suffix not in (".csv", ".parquet"):
            raise ValueError(f"The output file must end in .csv or .parquet, but {out.name!r} was passed.")
        if out.suffix == ".parquet" and kwargs.get("engine", "duckdb") == "duckdb" and set(kwargs) <= {
                "engine", "prices", "since", "until"}:
            from aiscale.facts.window import window_days

            low, high, days = window_days(kwargs.get("since"), kwargs.get("until"))
            prices = kwargs.get("prices")
            return export_facts_parquet(self.root, out, prices=prices, since=low, until=high, days=days,
                                        rates=lambda: self.rates(prices=prices))
        facts = self.facts(**kwargs)
        if out.suffix == ".csv":
            table = facts if raw_csv else neutralise_formulas(facts)
            return write_atomically(out, lambda tmp: table.to_csv(tmp, index=False))
        return write_atomically(out, lambda tmp: pq.write_table(
            pa.Table.from_pandas(facts, preserve_index=False), tmp))


def load(paths: Iterable[str | Path] | str | Path, *, store: str | Path,
         format: str | None = None) -> TraceStore:
    """Load export files into a trace store and return it.

    Parameters
    ----------
    paths : path or list of paths
        Export files or folders; formats are detected from content.
    store : str or Path
        The store folder (created when missing). Loading a file again adds nothing.
    format : str, optional
        Force a format (see ``aiscale.formats()``).

    Returns
    -------
    TraceStore
        With ``last_load`` holding rows read / loaded / quarantined per file.

    Examples
    --------
    >>> import aiscale, tempfile
    >>> s = aiscale.load([], store=tempfile.mkdtemp())
    >>> s.last_load.rows_read
    0
    """
    trace_store = TraceStore(store)
    trace_store.load(paths, format=format)
    return trace_store

