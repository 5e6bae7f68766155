"""``aiscale simulate``: write simulated traces with known truth to a folder.

Wire it into the main parser with :func:`add_simulate_command`::

    aiscale simulate -o DIR --traces N --seed S [--format otlp|parquet]

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="aiscale")
>>> _ = add_simulate_command(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["simulate", "-o", "out", "--traces", "10"])
>>> args.traces, args.seed, args.format
(10, 0, 'otlp')
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_simulate_command(subparsers) -> argparse.ArgumentParser:
    """Add the ``simulate`` sub-command (handler in ``func``) to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "simulate", help="write simulated agent traces with known truth",
        description="Write simulated agent traces (OTLP JSON lines or canonical Parquet) and "
                    "truth.json with the laws they were drawn from.")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    parser.add_argument("--traces", type=int, default=2_000, help="number of traces (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=["otlp", "parquet"], default="otlp",
                        help="otlp: Collector file-exporter JSON lines; parquet: canonical tables")
    parser.add_argument("--trials", type=int, default=4, help="trials per task and variant")
    parser.add_argument("--days", type=int, default=14, help="days the traces are spread over")
    parser.add_argument("--chunk-traces", type=int, default=10_000,
                        help="traces generated at once (bounds memory; part of the seed)")
    parser.set_defaults(handler=run_simulate)
    return parser


def run_simulate(args: argparse.Namespace) -> int:
    """Handle ``aiscale simulate``: generate, write, print a one-line summary; return 0."""
    from aiscale.sim.simulate import simulate_to

    if args.traces < 0:
        raise ValueError(f"--traces must be >= 0, but {args.traces} was passed.")
    started = time.perf_counter()
    truth = simulate_to(args.out, args.traces, seed=args.seed, format=args.format,
                        n_trials=args.trials, days=args.days, chunk_traces=args.chunk_traces)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    print(f"wrote {args.traces:,} traces ({len(truth.variants)} variants, seed {args.seed}, "
          f"{args.format}) to {args.out} in {time.perf_counter() - started:.1f} s, "
          f"{size / 1e6:.1f} MB; laws in {Path(args.out) / 'truth.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``simulate`` on its own (``python -m aiscale.cli.simulate -o DIR ...``)."""
    parser = argparse.ArgumentParser(prog="aiscale")
    add_simulate_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
