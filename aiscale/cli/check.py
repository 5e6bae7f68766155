"""``aiscale check``: alert rules for scheduled runs, as an exit code and a JSON record.

Exit codes: 0 all clear, 3 a rule fired, 2 usage or input error (no store, no traces in the
window, a bad value).

Examples
--------
>>> import argparse
>>> commands = argparse.ArgumentParser(prog="aiscale").add_subparsers()
>>> add_check_command(commands)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiscale.cli.exits import EXIT_FIRED, EXIT_OK


def _days(text: str) -> int:
    import pandas as pd

    return max(1, int(round(pd.Timedelta(text) / pd.Timedelta(days=1))))


def _cmd_check(args: argparse.Namespace) -> int:
    from aiscale.analysis.change.alerts import check_rules
    from aiscale.store.trace_store import TraceStore

    if not Path(args.store).is_dir():
        raise FileNotFoundError(f"{args.store}: no trace store here; create one with "
                                f"`aiscale load PATH --store {args.store}`.")
    facts = TraceStore(args.store).facts(prices=args.prices)
    if facts.empty:
        raise ValueError(f"{args.store}: the store has no traces to check.")
    result = check_rules(facts, since=args.since, until=args.until, budget_usd=args.budget_usd,
                         horizon_days=_days(args.horizon), budget_risk=args.budget_risk,
                         max_success_drop=args.max_success_drop / 100,
                         max_cost_rise=args.max_cost_rise / 100, alpha=args.alpha)
    record = json.dumps(result.to_json(), indent=1, default=str)
    if args.json == "-":
        print(record)
        print(result.text(), file=sys.stderr)
    else:
        print(result.text())
        if args.json:
            Path(args.json).write_text(record + "\n")
    return EXIT_FIRED if result.fired else EXIT_OK


def add_check_command(commands) -> None:
    """Add the ``check`` sub-command to the CLI's sub-parsers."""
    cmd = commands.add_parser("check", help="alert rules for scheduled runs (exit 3 when one fires)")
    cmd.add_argument("--store", required=True, help="trace store folder")
    cmd.add_argument("--since", default="7d", help="window length, e.g. 7d or 24h (baseline: the one before)")
    cmd.add_argument("--until", help="end of the window (default: the latest trace)")
    cmd.add_argument("--budget-usd", type=float, help="budget over the horizon")
    cmd.add_argument("--horizon", default="30d", help="forecast horizon for the budget, e.g. 30d")
    cmd.add_argument("--budget-risk", type=float, default=0.5,
                     help="fire when P(spend > budget) is at least this (default 0.5)")
    cmd.add_argument("--max-success-drop", type=float, default=0.0, metavar="PP",
                     help="fire on a significant success drop of more than PP percentage points")
    cmd.add_argument("--max-cost-rise", type=float, default=0.0, metavar="PCT",
                     help="fire on a significant rise of mean cost per trace of more than PCT percent")
    cmd.add_argument("--alpha", type=float, default=0.05, help="false discovery rate of the drift rules")
    cmd.add_argument("--prices", help="price sheet (CSV or YAML) overriding genai-prices")
    cmd.add_argument("--json", metavar="FILE", help="write the JSON record here ('-' for stdout)")
    cmd.set_defaults(handler=_cmd_check)
