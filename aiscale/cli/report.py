"""``aiscale report``: render a report notebook on a store into self-contained HTML.

``-p KEY=VALUE`` values are read as plain YAML (no tags, no anchors, no implicit dates) and
checked against the notebook's parameters cell before anything runs; the run prints one line
per section with its time on stderr.

Examples
--------
>>> from aiscale.report.parameters import parse_cli_parameters
>>> parse_cli_parameters(["budget_usd=500", "variants=[a, b]", "since=7d"])
{'budget_usd': '500', 'variants': ['a', 'b'], 'since': '7d'}
"""

from __future__ import annotations

import argparse
import sys


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aiscale.report.outputs import written_by_aiscale
    from aiscale.report.parameters import parse_cli_parameters
    from aiscale.report.render import ReportExecutionError, report

    if not Path(args.store).exists():
        raise FileNotFoundError(f"{args.store}: no trace store (or per-trace table) here; create a "
                                f"store with `aiscale load PATH --store {args.store}`.")
    parameters = parse_cli_parameters(args.parameter or [])
    if args.since:
        if "since" in parameters and str(parameters["since"]) != args.since:
            raise ValueError(f"--since {args.since} and -p since={parameters['since']} disagree: "
                             "give the window once.")
        parameters["since"] = args.since
    try:
        out = report(args.store, notebook=args.notebook, out=args.output, parameters=parameters,
                     show_code=args.show_code, progress=sys.stderr)
    except ReportExecutionError as exc:
        print(f"aiscale: error: {exc}", file=sys.stderr)
        return 2
    index = out.parent / "index.html"
    listed = (f"index: {index}" if written_by_aiscale(index)
              else f"{index} is not aiscale's, left alone")
    print(f"wrote {out} (and {out.with_suffix('.ipynb').name}); {listed}")
    return 0


def add_report_command(commands) -> None:
    """Add the ``report`` sub-command to the CLI's sub-parsers."""
    cmd = commands.add_parser("report", help="render a report notebook into self-contained HTML")
    cmd.add_argument("--store", required=True,
                     help="trace store folder, or a per-trace table (CSV/Parquet/JSONL; map its "
                          "columns with -p 'columns={...}')")
    cmd.add_argument("--notebook", default="overview", help="overview, cost-investigation, compare, or a path")
    cmd.add_argument("-o", "--output", default="reports/overview.html",
                     help="HTML file to write (never replaces a file aiscale did not write)")
    cmd.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE",
                     help="notebook parameter (repeatable), e.g. -p budget_usd=500; checked against "
                          "the notebook's parameters cell")
    cmd.add_argument("--since", help="relative window, e.g. 7d or 24h, or an ISO date")
    cmd.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    cmd.set_defaults(handler=_cmd_report)
