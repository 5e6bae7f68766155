"""The ``aiscale`` command line: one entry point; each command group lives in its own module.

Exit codes: 0 ok; 1 a load quarantined rows (partial load); 2 usage error or unreadable
input; 3 an alert rule of ``aiscale check`` fired. Every error names the file, the rule and, where known, the fix.

Examples
--------
>>> build_parser().prog
'aiscale'
>>> main(["--version"])
Traceback (most recent call last):
SystemExit: 0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from aiscale.cli.check import add_check_command
from aiscale.cli.exits import EXIT_USAGE
from aiscale.cli.report import add_report_command
from aiscale.cli.simulate import add_simulate_command
from aiscale.cli.spend import add_spend_command
from aiscale.cli.store import add_store_commands
from aiscale.cli.terminal import PrintableStream
from aiscale.cli.whatif import add_whatif_command
from aiscale.store.lock import StoreBusyError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit with 2 and a hint
        self.print_usage(sys.stderr)
        print(f"aiscale: error: {message} (see `aiscale {self.prog.split()[-1]} --help`)",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``aiscale`` command."""
    from aiscale import __version__

    parser = _Parser(prog="aiscale", description="Cost, loop and reliability analysis of LLM/agent traces.")
    parser.add_argument("--version", action="version", version=f"aiscale {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    add_store_commands(commands)
    add_simulate_command(commands)
    add_report_command(commands)
    add_check_command(commands)
    add_spend_command(commands)
    add_whatif_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Everything printed passes through :func:`~aiscale.cli.terminal.printable`; every error
    (bad input, a busy store, disk full, an unwritable target, Ctrl-C, a closed pipe) is one
    line on stderr and exit code 2.
    """
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(out), PrintableStream(err)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        code = _fail("interrupted; nothing half-written was kept (a load commits whole files only)")
        if argv is None:  # the real command: leave now, before reader threads can abort the exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())  # the reader went away: say nothing more on stdout
        return EXIT_USAGE
    except (OSError, ValueError, StoreBusyError) as exc:
        return _fail(_one_line(exc))
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("duckdb", "pyarrow"):
            return _fail(_one_line(exc))
        raise
    finally:
        sys.stdout, sys.stderr = out, err


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if isinstance(exc, OSError) else text


def _fail(message: str) -> int:
    print(f"aiscale: error: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
