"""``aiscale load``, ``facts``, ``verify`` and ``formats``: fill a trace store, check it, read it out.

Examples
--------
>>> import argparse
>>> commands = argparse.ArgumentParser(prog="aiscale").add_subparsers()
>>> add_store_commands(commands)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from aiscale.cli.exits import EXIT_OK, EXIT_PARTIAL


def _cmd_load(args: argparse.Namespace) -> int:
    from aiscale.loaders import expand_paths
    from aiscale.store.trace_store import TraceStore

    store = TraceStore(args.store)
    if args.engine == "spark":
        return _load_on_spark(store, args)
    expand_paths(args.paths)  # a missing path fails here, before anything is read
    bar = _progress_bar()

    def progress(path: str, rows: int) -> None:
        bar.set_postfix_str(Path(path).name[-40:], refresh=False)
        bar.update(rows)

    started = time.perf_counter()
    summary = store.load(args.paths, format=args.format, progress=progress if bar is not None else None,
                         wait=not args.no_wait, on_wait=lambda message: print(message, file=sys.stderr))
    if bar is not None:
        bar.close()
    return _report_load(store, summary, started)


def _progress_bar():
    """A tqdm bar on stderr when it is a terminal; None otherwise (tqdm is then not imported:
    with ``disable=None`` it would draw nothing there)."""
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(unit=" rows", unit_scale=True, disable=None, delay=2.0, file=sys.stderr, desc="loading")


def _load_on_spark(store, args: argparse.Namespace) -> int:
    from aiscale.loaders import expand_paths
    from aiscale.store.spark_load import is_uri, load_on_spark

    if args.format not in (None, "otlp"):
        raise ValueError(f"The value for `--format` with `--engine spark` must be 'otlp', but "
                         f"{args.format!r} was passed (load other formats without --engine spark).")
    expand_paths([p for p in args.paths if not is_uri(p)])  # a missing local path fails here
    started = time.perf_counter()
    summary = load_on_spark(store, args.paths, wait=not args.no_wait,
                            on_wait=lambda message: print(message, file=sys.stderr))
    return _report_load(store, summary, started)


def _report_load(store, summary, started: float) -> int:
    print(summary)
    print(f"store {store.root}; took {time.perf_counter() - started:.1f} s")
    if summary.rows_quarantined:
        print(f"{summary.rows_quarantined:,} rows quarantined: see {store.root / 'quarantine'}",
              file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _cmd_facts(args: argparse.Namespace) -> int:
    if not Path(args.store).is_dir():
        raise FileNotFoundError(f"{args.store}: no trace store here; create one with `aiscale load PATH --store {args.store}`.")
    if Path(args.output).suffix == ".parquet" and args.engine == "duckdb":  # DuckDB to Parquet: no pandas
        from aiscale.store.facts_file import export_facts_parquet

        out = export_facts_parquet(Path(args.store), Path(args.output), prices=args.prices)
    else:
        from aiscale.store.trace_store import TraceStore

        out = TraceStore(args.store).export_facts(args.output, engine=args.engine, prices=args.prices,
                                                  raw_csv=args.raw_csv)
    print(f"wrote {out}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from aiscale.store.verify import drop_damaged, verify_store

    root = Path(args.store)
    if not (root / "manifest.json").is_file():
        raise FileNotFoundError(f"{root}: no trace store here (no manifest.json).")
    result = verify_store(root)
    print(result)
    if result.ok:
        return EXIT_OK
    if args.drop_damaged:
        dropped = drop_damaged(root)
        print(f"dropped {len(dropped)} damaged file(s) from the store; load them again: "
              + " ".join(dropped))
    return EXIT_PARTIAL


def _cmd_formats(args: argparse.Namespace) -> int:
    from aiscale.loaders import formats

    for name, description in formats().items():
        print(f"{name:<22} {description}")
    return EXIT_OK


def add_store_commands(commands) -> None:
    """Add ``load``, ``facts`` and ``formats`` to the ``aiscale`` sub-command parsers."""
    load = commands.add_parser("load", help="load export files into a trace store")
    load.add_argument("paths", nargs="+", help="export files or folders")
    load.add_argument("--store", required=True, help="trace store folder (created when missing)")
    load.add_argument("--format", help="force a format (see `aiscale formats`)")
    load.add_argument("--no-wait", action="store_true",
                      help="fail at once when another load into the store is running (default: wait)")
    load.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                      help="spark: read OTLP JSON on a Spark cluster (paths may be s3a://, hdfs://, "
                           "... URIs; see AISCALE_SPARK_MASTER)")
    load.set_defaults(handler=_cmd_load)

    facts = commands.add_parser("facts", help="write trace facts (one row per trace)")
    facts.add_argument("--store", required=True)
    facts.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.parquet")
    facts.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    facts.add_argument("--prices", help="price sheet (CSV or YAML) overriding genai-prices")
    facts.add_argument("--raw-csv", action="store_true",
                       help="write text cells as they are (default: cells starting with = + - @ get a "
                            "leading ' so spreadsheets do not run them)")
    facts.set_defaults(handler=_cmd_facts)

    verify = commands.add_parser("verify", help="check every part of a store against its recorded "
                                                "size and checksum (exit 1 when damaged)")
    verify.add_argument("--store", required=True)
    verify.add_argument("--drop-damaged", action="store_true",
                        help="remove damaged files from the store so they can be loaded again")
    verify.set_defaults(handler=_cmd_verify)

    listing = commands.add_parser("formats", help="list the formats aiscale reads")
    listing.set_defaults(handler=_cmd_formats)
