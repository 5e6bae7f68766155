"""Write the bundled demo data to ``data/demo/``: simulated agent traces with known truth.

Run from the repository root: ``.venv/bin/python scripts/make_demo.py``. Seeded, so the
files come out byte for byte the same; ``tests/test_simulate.py`` checks that they do.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from aiscale.sim.laws import DEFAULT_VARIANTS, Drift
from aiscale.sim.simulate import OTLP_FILE, simulate, simulate_to

SEED = 7
TRACES = 240
# The demo plants a drift large enough to be found in its 60 'strong' traces (the default
# simulator's x1.3 needs thousands): output tokens x1.6 from 2025-06-09.
DRIFT = Drift(datetime(2025, 6, 9, tzinfo=timezone.utc), 1.6)
VARIANTS = tuple(replace(v, drift=DRIFT) if v.name == "strong" else v for v in DEFAULT_VARIANTS)
OUT = Path(__file__).resolve().parents[1] / "data" / "demo"


def _seed_note(out: Path) -> str:
    sim = simulate(TRACES, seed=SEED, variants=VARIANTS)
    truth, spans = sim.truth.traces, sim.spans
    size = sum((out / name).stat().st_size for name in (OTLP_FILE, "truth.json"))
    lines = [
        "# Demo data: how it was made",
        "",
        "Simulated by aiscale itself: `.venv/bin/python scripts/make_demo.py`, which runs",
        f"`aiscale.sim.simulate.simulate_to(\"data/demo\", {TRACES}, seed={SEED}, format=\"otlp\", "
        "variants=VARIANTS)`, where VARIANTS are the simulator's defaults with the 'strong' drift",
        f"set to output tokens x{DRIFT.output_factor} from {DRIFT.at:%Y-%m-%d}, so that the demo's drift is found.",
        "Same seed, same bytes.",
        "",
        f"- `{OTLP_FILE}`: OTLP JSON lines as the OpenTelemetry Collector's file exporter writes",
        "  them (GenAI semantic conventions; task, trial, variant and outcome as `aiscale.*`",
        "  attributes on each root span).",
        "- `truth.json`: every law the traces were drawn from (per variant: task-success Beta,",
        "  loop-count law and cap, token laws, cache share, prices, latency laws, error rate,",
        "  stuck-loop share, drift) and the ids of the planted stuck loops. `aiscale.sim.simulate`",
        "  documents the laws; `Truth.expected(...)` and `Truth.loop_budget(...)` compute what",
        "  follows from them.",
        "",
        f"Contents: {len(truth)} traces, {len(spans):,} spans, {truth['task_id'].nunique()} tasks x "
        f"{truth['trial'].nunique()} trials x {truth['variant'].nunique()} variants "
        f"({', '.join(v.name for v in sim.truth.variants)}); "
        f"{int(truth['n_errors'].sum())} failed LLM calls followed by retries; "
        f"{int(truth['stuck'].sum())} stuck loops; {int(truth['censored'].sum())} traces cut by "
        f"the step cap; {int(truth['after_drift'].sum())} 'strong' traces after the drift "
        f"(output tokens x{DRIFT.output_factor} from {DRIFT.at:%Y-%m-%d}); "
        f"{size / 1e6:.1f} MB of OTLP and truth.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Regenerate the demo files (``--out`` to write elsewhere, e.g. to compare)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    simulate_to(out, TRACES, seed=SEED, format="otlp", variants=VARIANTS)
    (out / "SEED.md").write_text(_seed_note(out))
    record = json.loads((out / "truth.json").read_text())
    print(f"wrote {out}: {TRACES} traces, {len(record['stuck_trace_ids'])} stuck loops")


if __name__ == "__main__":
    main()
