"""Render the results of ``benchmarks/run.py`` as Markdown (``RESULTS.md`` and the README table).

Re-render without measuring again::

    .venv/bin/python benchmarks/report.py benchmarks/out/results.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

TARGETS = {"floor": 2.0, "pyarrow": 1.5, "pandas": 20.0, "rss_gb": 1.5, "rollup": 1.5}


def _num(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _combined(steps: dict) -> dict | None:
    if "combined" in steps:
        return steps["combined"]
    if "load" not in steps or "facts" not in steps:
        return None
    load, facts = steps["load"], steps["facts"]
    return {"wall_s": load["wall_s"] + facts["wall_s"], "cpu_s": load["cpu_s"] + facts["cpu_s"],
            "rss_gb": max(load["rss_gb"], facts["rss_gb"]), "ok": load["ok"] and facts["ok"]}


def _rollup(steps: dict) -> dict:
    step = steps.get("rollup", {})
    try:
        return json.loads(step.get("last_line") or "{}")
    except json.JSONDecodeError:
        return {}


ROWS = [("(a) `aiscale load`", "load"), ("(a) `aiscale facts`", "facts"),
        ("(a) load + facts", "combined"),
        ("(e) pyarrow flatten (explicit schema, Arrow compute → Parquet)", "pyarrow"),
        ("(b) DuckDB bare `COPY read_json → parquet`", "bare"),
        ("(c) naive pandas (json.loads, json_normalize, groupby)", "pandas")]


def _main_table(runs: list[dict]) -> list[str]:
    head = "| path | " + " | ".join(
        f"{r['size']}: wall s | spans/s | CPU s | peak RSS GB" for r in runs) + " |"
    lines = [head, "|---|" + "---|---|---|---|" * len(runs)]
    for label, key in ROWS:
        cells = []
        for run in runs:
            step = _combined(run["steps"]) if key == "combined" else run["steps"].get(key)
            if step is None:
                cells.append("not run | | |")
                continue
            rate = run["spans"] / step["wall_s"] if step["ok"] and step["wall_s"] else float("nan")
            failed = "" if step["ok"] else " (failed)"
            cells.append(f"{_num(step['wall_s'])}{failed} | {_num(rate, 0)} | {_num(step['cpu_s'])} | "
                         f"{_num(step['rss_gb'], 2)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, key in (("(d) rollup `store.facts()`, in-process, median of 3 (1 GB cap)", "aiscale_s"),
                       ("(d) hand-written DuckDB SQL, same Parquet and rates, DuckDB defaults",
                        "hand_sql_s"),
                       ("(d) the same hand-written SQL under aiscale's 1 GB cap", "hand_sql_capped_s")):
        cells = []
        for run in runs:
            seconds = _rollup(run["steps"]).get(key, float("nan"))
            rate = run["spans"] / seconds if seconds and not math.isnan(seconds) else float("nan")
            cells.append(f"{_num(seconds, 2)} | {_num(rate, 0)} | | ")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def _targets(runs: list[dict]) -> list[str]:
    lines = ["| target | " + " | ".join(r["size"] for r in runs) + " | met |",
             "|---|" + "---|" * len(runs) + "---|"]

    def row(label: str, values: list[float], ok: bool | None, digits: int = 2) -> None:
        verdict = "–" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {label} | " + " | ".join(_num(v, digits) for v in values) + f" | {verdict} |")

    combined = [_combined(r["steps"]) or {} for r in runs]
    floor = [_ratio(c.get("wall_s", float("nan")), r["steps"].get("bare", {}).get("wall_s", float("nan")))
             for c, r in zip(combined, runs, strict=True)]
    floor_cpu = [_ratio(c.get("cpu_s", float("nan")), r["steps"].get("bare", {}).get("cpu_s", float("nan")))
                 for c, r in zip(combined, runs, strict=True)]
    last = floor[-1]
    for unit, label in (("wall_s", "wall"), ("cpu_s", "CPU time")):
        ratios = [_ratio(c.get(unit, float("nan")),
                         r["steps"].get("pyarrow", {}).get(unit, float("nan")))
                  for c, r in zip(combined, runs, strict=True)]
        met = None if unit == "cpu_s" or any(math.isnan(v) for v in ratios) else \
            max(ratios) <= TARGETS["pyarrow"]
        row(f"a/e {label}: load + facts ÷ pyarrow flatten (≤ {TARGETS['pyarrow']:g})", ratios, met)
    row(f"a/b wall: load + facts ÷ DuckDB bare (≤ {TARGETS['floor']:g} at 10 M)", floor,
        None if math.isnan(last) else last <= TARGETS["floor"])
    row("a/b CPU time (user + system)", floor_cpu, None)
    pandas = [_ratio(r["steps"].get("pandas", {}).get("wall_s", float("nan")), c.get("wall_s", float("nan")))
              for c, r in zip(combined, runs, strict=True)]
    known = [p for p in pandas if not math.isnan(p)]
    row(f"c/a: naive pandas ÷ load + facts (≥ {TARGETS['pandas']:g})", pandas,
        None if not known else known[0] >= TARGETS["pandas"], 1)
    rss = [c.get("rss_gb", float("nan")) for c in combined]
    row(f"peak RSS of load and facts, GB (< {TARGETS['rss_gb']:g}, flat)", rss,
        None if any(math.isnan(v) for v in rss) else max(rss) < TARGETS["rss_gb"])
    rollups = [_rollup(r["steps"]) for r in runs]
    ratios = [_ratio(x.get("aiscale_s", float("nan")), x.get("hand_sql_s", float("nan"))) for x in rollups]
    row(f"d: store.facts() ÷ hand-written SQL, DuckDB defaults (≤ {TARGETS['rollup']:g})", ratios,
        None if any(math.isnan(v) for v in ratios) else max(ratios) <= TARGETS["rollup"])
    capped = [_ratio(x.get("aiscale_s", float("nan")), x.get("hand_sql_capped_s", float("nan")))
              for x in rollups]
    row(f"d: store.facts() ÷ hand-written SQL, both capped at 1 GB (≤ {TARGETS['rollup']:g})", capped,
        None if any(math.isnan(v) for v in capped) else max(capped) <= TARGETS["rollup"])
    agree = ["yes" if x.get("agree") else ("no" if x else "–") for x in rollups]
    lines.append("| hand-written SQL gives the same facts | " + " | ".join(agree) + " | – |")
    return lines


def _analyses(block: dict) -> list[str]:
    if not block or "analyses" not in block:
        return ["Analyses at scale: not run" + (f" ({block.get('error', '')})" if block else "") + "."]
    lines = [f"1 M trace facts ({block['traces']:,} rows, from the simulator's per-trace truth) "
             f"through the overview analyses, default settings, one process (peak RSS "
             f"{_num(block.get('rss_gb', float('nan')), 2)} GB):", "",
             "| analysis | seconds | called with |", "|---|---|---|"]
    for item in block["analyses"]:
        seconds = _num(item["seconds"], 2) if not item["error"] else f"failed: {item['error']}"
        lines.append(f"| `{item['name']}` | {seconds} | {item['note']} |")
    return lines


def markdown(results: dict) -> str:
    runs = results["runs"]
    sizes = ", ".join(f"{r['size']} = {r['spans']:,} spans, {r['traces']:,} traces, "
                      f"{r['file_bytes'] / 1e9:.2f} GB (measured {r.get('when', results['when'])}, "
                      f"commit {r.get('commit', results.get('commit', 'unknown'))})" for r in runs)
    lines = ["# Scale benchmark", "",
             f"`make bench` ({results['machine']}). Simulated OTLP JSON "
             f"(`aiscale simulate --format otlp`): {sizes}. Each step is its own process under "
             "`/usr/bin/time -v`, the steps interleaved over "
             f"{runs[0].get('rounds', 1)} round(s) (median shown); wall time includes Python "
             "start-up and, on this shared machine, waiting for the CPU, so CPU time is shown too. "
             "Rows: " + ", ".join(f"{r['size']} aiscale {r['spans']:,} / pyarrow "
                                  f"{r.get('pyarrow_rows') or 0:,}" for r in runs) + ".", ""]
    lines += _main_table(runs) + ["", "Targets (ratios from this one run):", ""] + _targets(runs)
    lines += [""] + _analyses(results.get("analyses", {}))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
