"""The ``aiscale`` command line: one entry point; each command group lives in its own module.

Exit codes: 0 ok; 1 a load quarantined rows (partial load); 2 usage error or unreadable
input. Every error names the file, the rule and, where known, the fix.

Examples
--------
>>> build_parser().prog
'aiscale'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiscale.cli.exits import EXIT_USAGE
from aiscale.cli.report import add_report_command
from aiscale.cli.simulate import add_simulate_command
from aiscale.cli.store import add_store_commands


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit with 2 and a hint
        self.print_usage(sys.stderr)
        print(f"aiscale: error: {message} (see `aiscale {self.prog.split()[-1]} --help`)",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``aiscale`` command."""
    parser = _Parser(prog="aiscale", description="Cost, loop and reliability analysis of LLM/agent traces.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    add_store_commands(commands)
    add_simulate_command(commands)
    add_report_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"aiscale: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # bad values and unknown formats carry their own message
        print(f"aiscale: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
