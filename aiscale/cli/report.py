"""``aiscale report``: render a report notebook on a store into self-contained HTML.

Examples
--------
>>> parse_parameters(["budget_usd=500", "variants=[a, b]", "since=7d"])
{'budget_usd': 500, 'variants': ['a', 'b'], 'since': '7d'}
"""

from __future__ import annotations

import argparse
import sys

import yaml


def parse_parameters(items: list[str]) -> dict:
    """Parse ``KEY=VALUE`` pairs; values are read as YAML scalars or lists (numbers, lists, null)."""
    parameters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"A parameter must be KEY=VALUE with KEY a Python name, but {item!r} was passed.")
        parameters[key] = yaml.safe_load(value) if value else None
    return parameters


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aiscale.report.render import ReportExecutionError, report

    if not Path(args.store).exists():
        raise FileNotFoundError(f"{args.store}: no trace store (or per-trace table) here; create a "
                                f"store with `aiscale load PATH --store {args.store}`.")
    parameters = parse_parameters(args.parameter or [])
    if args.since:
        parameters["since"] = args.since
    try:
        out = report(args.store, notebook=args.notebook, out=args.output, parameters=parameters,
                     show_code=args.show_code)
    except ReportExecutionError as exc:
        print(f"aiscale: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} (and {out.with_suffix('.ipynb').name}); index: {out.parent / 'index.html'}")
    return 0


def add_report_command(commands) -> None:
    """Add the ``report`` sub-command to the CLI's sub-parsers."""
    cmd = commands.add_parser("report", help="render a report notebook into self-contained HTML")
    cmd.add_argument("--store", required=True,
                     help="trace store folder, or a per-trace table (CSV/Parquet/JSONL; map its "
                          "columns with -p 'columns={...}')")
    cmd.add_argument("--notebook", default="overview", help="overview, cost-investigation, compare, or a path")
    cmd.add_argument("-o", "--output", default="reports/overview.html", help="HTML file to write")
    cmd.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE",
                     help="notebook parameter (repeatable), e.g. -p budget_usd=500")
    cmd.add_argument("--since", help="relative window, e.g. 7d or 24h, or an ISO date")
    cmd.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    cmd.set_defaults(handler=_cmd_report)
