"""``aiscale spend``: spend per day, week or month by model, variant, session or project.

A readable table by default; ``--json`` or ``--csv`` for machines. Unknown cost prints as
"unknown", never as $0.

Examples
--------
>>> import argparse
>>> commands = argparse.ArgumentParser(prog="aiscale").add_subparsers()
>>> add_spend_command(commands)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiscale.cli.exits import EXIT_OK


def open_store(path: str):
    """The store at ``path``, or FileNotFoundError naming the fix."""
    from aiscale.store.trace_store import TraceStore

    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no trace store here; create one with "
                                f"`aiscale load PATH --store {path}`.")
    return TraceStore(path)


def window(args: argparse.Namespace) -> tuple:
    """``--since`` (relative like 30d, or a date) and ``--until`` as UTC times."""
    from aiscale.report.context import parse_since

    return parse_since(args.since), parse_since(args.until)


def readable(table, money: list[str]) -> str:
    """A table for the terminal: dollars with cents, unknown for null."""
    from aiscale.analysis._result import fmt_usd

    shown = table.copy()
    for column in money:
        shown[column] = [fmt_usd(v) for v in shown[column].astype(float)]
    return shown.to_string(index=False, na_rep="unknown")


def _cmd_spend(args: argparse.Namespace) -> int:
    import aiscale

    since, until = window(args)
    result = aiscale.spend(open_store(args.store), by=args.by, group=args.group, since=since,
                           until=until, prices=args.prices)
    table = result.summary()
    table["period"] = table["period"].dt.strftime("%Y-%m-%d")
    if args.json:
        print(table.to_json(orient="records", indent=1))
    elif args.csv:
        from aiscale.store.safe_output import neutralise_formulas

        print((table if args.raw_csv else neutralise_formulas(table)).to_csv(index=False), end="")
    else:
        print(readable(table, ["cost_usd"]) if len(table) else "no LLM calls in this window")
        for note in result.notes:
            print(f"note: {note}")
    return EXIT_OK


def add_spend_command(commands) -> None:
    """Add the ``spend`` sub-command to the CLI's sub-parsers."""
    cmd = commands.add_parser("spend", help="spend per day/week/month by model, variant, session")
    cmd.add_argument("--store", required=True, help="trace store folder")
    cmd.add_argument("--by", choices=["day", "week", "month"], default="day")
    cmd.add_argument("--group", default="model",
                     help="model, provider, variant, session, user, task or project")
    cmd.add_argument("--since", help="relative window, e.g. 30d, or an ISO date")
    cmd.add_argument("--until", help="ISO date (exclusive)")
    cmd.add_argument("--prices", help="price sheet (CSV or YAML) overriding genai-prices")
    out = cmd.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON records instead of a table")
    out.add_argument("--csv", action="store_true", help="CSV instead of a table")
    cmd.add_argument("--raw-csv", action="store_true",
                     help="keep text cells that start like a formula as they are (CSV only)")
    cmd.set_defaults(handler=_cmd_spend)
