"""Load OTLP JSON into a store on Spark, for exports that outgrow one machine.

Spark reads each file's lines (local paths or any URI it can read: ``s3a://``, ``hdfs://``,
...) split across the cluster, numbers them, and the executors flatten them with the local
loader's own query and rules (:mod:`aiscale.store._spark_flatten`); the spans are then
partitioned by trace so the per-chunk rules (duplicates, parent cycles) see whole traces.
Spans are written as Parquet under ``spans/day=YYYY-MM-DD/``, trace rows under ``traces/``,
the quarantine as ``quarantine/<digest>.jsonl``; the driver moves the parts into the store
and names them, with sizes and checksums, in the manifest, under the store's lock. The
store folder must be one the driver can open (a mounted bucket); executors write to it
at ``AISCALE_SPARK_STORE_URI`` when that is set (see :mod:`aiscale.facts.spark`).

A file is known by the SHA-256 of its bytes when the driver can read it (as in a local load,
so loading it again with either engine adds nothing), else by its URI, size and modification
time. Only one-request-per-line OTLP JSON is read; a pretty-printed document is refused
(load it without ``--engine spark``).

Examples
--------
>>> is_uri("s3a://bucket/x.jsonl"), is_uri("/data/x.jsonl")
(True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from aiscale import schema
from aiscale.facts.spark import spark_paths, spark_session
from aiscale.loaders import expand_paths, otlp
from aiscale.loaders.base import Quarantined
from aiscale.store import loading
from aiscale.store._spark_flatten import FLAT_SCHEMA, OUT_SCHEMA, canonical_rows, flatten_lines
from aiscale.store.load_summary import FileLoad, LoadSummary, StoreContents
from aiscale.store.lock import load_lock
from aiscale.store.manifest import TABLES, file_digest, read_manifest

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str | Path) -> bool:
    """Whether ``path`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(str(path)))


def load_on_spark(store, paths: Iterable[str | Path] | str | Path, *, wait: bool = True,
                  on_wait=None) -> LoadSummary:
    """Load OTLP JSON files or folders into ``store`` (a TraceStore) on Spark.

    Parameters
    ----------
    store : TraceStore
        The store to load into; its folder must be open to the driver.
    paths : path, URI or list of them
        Files or folders (searched recursively); local folders skip files that are not
        OTLP, a named file must be OTLP.
    wait : bool, default=True
        Wait for another load into the store (False: raise at once).

    Returns
    -------
    LoadSummary
        Rows read / loaded / quarantined per file, as a local load reports them.
    """
    named = [paths] if isinstance(paths, (str, Path)) else list(paths)
    session = spark_session()
    session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    files = _list_files(session, named)
    root = store.root
    with load_lock(root, wait=wait, on_wait=on_wait):
        loading.clean_interrupted(root)
        summary = LoadSummary(files=[])
        known = read_manifest(root)["files"]
        stagings, added = [], []
        checks = loading.open_checks(root)
        try:
            for source, named_file in files:
                digest = _digest(session, source)
                if digest in known:
                    summary.files.append(FileLoad(source, "otlp", "already loaded"))
                    continue
                staging = root / f".load-{os.getpid()}-{digest[:16]}-{len(stagings):04d}"
                stagings.append(staging)
                started = datetime.now(timezone.utc)
                record = _stage(session, source, digest, staging, root, named_file)
                if record is None:
                    summary.files.append(FileLoad(source, None, "skipped",
                                                  reason="not OTLP JSON (the Spark engine reads OTLP only)"))
                    continue
                examples = record.pop("examples")
                loading.commit(root, staging, digest, record, checks)
                known[digest] = record
                added += [str(root / "spans" / n) for n in record["parts"]["spans"]]
                seconds = (datetime.now(timezone.utc) - started).total_seconds()
                summary.files.append(FileLoad(
                    source, "otlp", "loaded", rows_read=record["rows_read"],
                    rows_loaded=record["rows_loaded"], rows_quarantined=record["rows_quarantined"],
                    unit="span", seconds=seconds, quarantine_examples=examples))
            summary.orphan_spans = read_manifest(root).get("orphan_spans", 0)
            summary.colliding_traces = checks.colliding()
        finally:
            checks.close()
            loading.remove_staging([(None, None, None, s) for s in stagings])
        summary.contents = StoreContents.read_parts(added, [])
    store.last_load = summary
    return summary


def _list_files(session, named: list) -> list[tuple[str, bool]]:
    """(file, named) pairs: local paths as a local load lists them, URIs through Hadoop."""
    out = []
    local = [Path(p) for p in named if not is_uri(p)]
    named_local = set(local)
    for path in expand_paths(local):
        if path.is_file():
            out.append((str(path), path in named_local))
    for uri in (str(p) for p in named if is_uri(p)):
        jvm = session.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(uri)
        fs = hpath.getFileSystem(session.sparkContext._jsc.hadoopConfiguration())
        if fs.getFileStatus(hpath).isFile():
            out.append((uri, True))
            continue
        found, listing = [], fs.listFiles(hpath, True)
        while listing.hasNext():
            found.append(str(listing.next().getPath().toString()))
        out += [(f, False) for f in sorted(found)]
    return out


def _digest(session, source: str) -> str:
    if not is_uri(source) or source.startswith("file://"):
        return file_digest(Path(source.removeprefix("file://")))
    jvm = session.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(source)
    status = hpath.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).getFileStatus(hpath)
    key = f"{source}\n{status.getLen()}\n{status.getModificationTime()}"
    return "uri-" + hashlib.sha256(key.encode()).hexdigest()


def _numbered_lines(session, source: str):
    """The file's lines as (line_no from 1, raw bytes), numbered in file order on the JVM."""
    from pyspark.sql import functions as F

    lines = session.read.option("lineSep", "\n").text(source).select(
        F.spark_partition_id().alias("part"), F.monotonically_increasing_id().alias("mid"),
        F.col("value").cast("binary").alias("raw"))
    counts = sorted((r["part"], r["count"]) for r in lines.groupBy("part").count().collect())
    starts, total = [], 0
    for part, count in counts:
        starts.append((part, total))
        total += count
    first = session.createDataFrame(starts or [(0, 0)], "part int, first long")
    numbered = lines.join(F.broadcast(first), "part").select(
        (F.col("first") + F.col("mid") - F.shiftleft(F.col("part").cast("long"), 33) + 1)
        .alias("line_no"), "raw")
    return numbered, max(1, len(counts))


def _stage(session, source: str, digest: str, staging: Path, root: Path, named: bool) -> dict | None:
    """Flatten, check and write one file into ``staging``; the manifest record, or None
    when the file is not OTLP JSON (a named file raises)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    head = session.read.option("lineSep", "\n").text(source).limit(1).collect()
    first = head[0]["value"].encode() if head else b""
    if otlp._is_document(first):
        raise ValueError(f"{source}: a pretty-printed OTLP document; the Spark engine reads one "
                         "request per line (load this file without --engine spark).")
    if not otlp.sniff(Path(source), first):
        if named:
            raise ValueError(f"{source}: not OTLP JSON (no resourceSpans on line 1); the Spark "
                             "engine reads OTLP only (load other formats without --engine spark).")
        return None
    lines, parts = _numbered_lines(session, source)
    flat = lines.mapInArrow(flatten_lines, from_arrow_schema(FLAT_SCHEMA)).persist()
    try:
        # a quarter of an input split each: a partition is held whole in pandas
        out = (flat.repartition(4 * parts, "trace_id").sortWithinPartitions("line_no", "pos")
               .mapInArrow(canonical_rows(source), from_arrow_schema(OUT_SCHEMA)).persist())
        target = spark_paths(str(root), [str(staging)])[0]
        kept = out.filter(F.col("q_reason").isNull())
        kept.select(*schema.SPAN_COLUMNS, "day").write.partitionBy("day").option(
            "compression", "zstd").parquet(f"{target}/spans")
        _traces(flat).write.option("compression", "zstd").parquet(f"{target}/traces")
        bad = out.filter(F.col("q_reason").isNotNull()).select(
            "source_row", "q_reason", "q_excerpt", "q_trace", "q_lost").toPandas()
        rows_read = flat.count()
        out.unpersist()
    finally:
        flat.unpersist()
    return _record(source, staging, digest, rows_read, bad)


def _traces(flat):
    """One trace row per trace of the file: the earliest start, and each convention field
    from the root span first, then the first span in line order that has it."""
    from pyspark.sql import functions as F

    spans = flat.filter(F.col("line_bad").isNull() & F.col("span_bad").isNull()).withColumn(
        "order", F.struct(F.col("parent_id").isNotNull().alias("child"), "line_no", "pos"))
    fields = [F.expr(f"min_by({f.name}, order) FILTER (WHERE {f.name} IS NOT NULL)").alias(f.name)
              for f in schema.TRACES if f.name not in ("trace_id", "started_at")]
    return spans.groupBy("trace_id").agg(F.min("start_time").alias("started_at"), *fields).select(
        *[F.col(f.name) for f in schema.TRACES])


def _record(source: str, staging: Path, digest: str, rows_read: int, bad: pd.DataFrame) -> dict:
    """The manifest record of a staged file; its parts renamed as a local load names them."""
    parts = {table: [] for table in TABLES}
    for table in ("spans", "traces"):
        folder = staging / table
        found = sorted(p for p in folder.rglob("*.parquet")) if folder.exists() else []
        for number, part in enumerate(found):
            name = part.with_name(f"{digest[:16]}-s{number:05d}.parquet")
            part.rename(name)
            parts[table].append(str(name.relative_to(folder)))
    quarantine = [Quarantined(source, int(r.source_row), r.q_reason, r.q_excerpt or "",
                              r.q_trace if isinstance(r.q_trace, str) else None, bool(r.q_lost))
                  for r in bad.sort_values(["source_row", "q_reason"]).itertuples(index=False)]
    if quarantine:
        pd.DataFrame([vars(q) for q in quarantine]).to_json(
            staging / "quarantine.jsonl", orient="records", lines=True)
    return {"path": source, "rows_read": rows_read, "rows_loaded": rows_read - len(quarantine),
            "rows_quarantined": len(quarantine), "unit": "span", "parts": parts,
            "loaded_at": datetime.now(timezone.utc).isoformat(),
            "examples": [str(q) for q in quarantine[:5]], "status": "loaded", "format": "otlp"}
