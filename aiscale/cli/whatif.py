"""``aiscale whatif``: what the window's calls would have cost on another model or prices.

Every call is re-priced from its own token counts (kept as they are: see
:mod:`aiscale.analysis.spend.whatif`). ``--as`` may repeat; ``--discount``, ``--cache-hit-rate``,
``--write-ttl``, ``--token-ratio`` and ``--scenario-prices`` apply to each ``--as`` scenario,
or form one scenario of their own without it.

Examples
--------
>>> scenarios(argparse.Namespace(as_model=["gpt-5.1"], discount=0.5, cache_hit_rate=None,
...           write_ttl=None, token_ratio=None, scenario_prices=None))
{'as gpt-5.1, discount 0.5': {'as': 'gpt-5.1', 'discount': 0.5}}
"""

from __future__ import annotations

import argparse
import json

from aiscale.cli.exits import EXIT_OK
from aiscale.cli.spend import open_store, readable, window

_OPTIONS = {"discount": "discount", "cache_hit_rate": "cache_hit_rate", "write_ttl": "write_ttl",
            "token_ratio": "token_ratio", "scenario_prices": "prices"}


def scenarios(args: argparse.Namespace) -> dict[str, dict]:
    """The scenarios the flags describe, named after them."""
    extra = {key: getattr(args, flag) for flag, key in _OPTIONS.items() if getattr(args, flag) is not None}
    label = ", ".join(f"{k} {v}" for k, v in extra.items())
    if not args.as_model:
        if not extra:
            raise ValueError("Give a scenario: --as MODEL, --discount, --cache-hit-rate, --write-ttl, "
                             "--token-ratio or --scenario-prices.")
        return {label: extra}
    return {", ".join([f"as {m}", label]).strip(", "): {"as": m, **extra} for m in args.as_model}


def _cmd_whatif(args: argparse.Namespace) -> int:
    import aiscale

    since, until = window(args)
    result = aiscale.whatif(open_store(args.store), scenarios(args), prices=args.prices,
                            since=since, until=until, n_boot=args.n_boot)
    table = result.summary()
    if args.json:
        print(json.dumps({"assumption": result.notes[0], "scenarios": table.to_dict("records")},
                         indent=1, default=str))
        return EXIT_OK
    shown = table[["scenario", "traces", "unpriced_calls", "total_usd", "total_lower", "total_upper",
                   "change_usd", "mean_usd", "p95_usd"]]
    print(readable(shown, ["total_usd", "total_lower", "total_upper", "change_usd", "mean_usd", "p95_usd"]))
    for note in result.notes:
        print(f"note: {note}")
    return EXIT_OK


def add_whatif_command(commands) -> None:
    """Add the ``whatif`` sub-command to the CLI's sub-parsers."""
    cmd = commands.add_parser("whatif", help="re-price the window's calls on another model or prices")
    cmd.add_argument("--store", required=True, help="trace store folder")
    cmd.add_argument("--as", dest="as_model", action="append", metavar="MODEL",
                     help="price every call as this model (repeatable; provider/model names a provider)")
    cmd.add_argument("--prices", help="price sheet for the actual cost and every scenario")
    cmd.add_argument("--scenario-prices", metavar="SHEET", help="a price sheet as the scenario")
    cmd.add_argument("--discount", type=float, help="fraction off every call, e.g. 0.5")
    cmd.add_argument("--cache-hit-rate", type=float, help="share of input read from cache")
    cmd.add_argument("--write-ttl", choices=["5m", "1h"], help="lifetime of cache writes")
    cmd.add_argument("--token-ratio", type=float, help="measured token ratio of the new model")
    cmd.add_argument("--since", help="relative window, e.g. 30d, or an ISO date")
    cmd.add_argument("--until", help="ISO date (exclusive)")
    cmd.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    cmd.add_argument("--json", action="store_true", help="JSON instead of a table")
    cmd.set_defaults(handler=_cmd_whatif)
