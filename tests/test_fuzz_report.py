"""Reports on hostile traces: strings escaped, 1 MB prompts not copied in, same numbers twice.

The store holds traces whose tool names, variants, task ids, models and metadata are markup
and quote soup, and whose tool arguments and attributes are 1 MB strings. The overview report
is rendered twice (file name with markup, sanitised); both renders must have no live element
made from a trace string, stay small, and show exactly the same numbers.
"""

from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_fuzz_safety import HOSTILE, live_elements

import aiscale
from aiscale import schema
from aiscale.report.render import report

MEGABYTE = "<script>" + "m" * (1 << 20)


def hostile_spans(n_traces: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    t0 = pd.Timestamp("2025-06-01 08:00", tz="UTC")
    spans, traces = [], []
    for n in range(n_traces):
        trace = f"{HOSTILE[n % 4]}/{n}"
        at = t0 + pd.Timedelta(minutes=7 * n)
        spans.append({"trace_id": trace, "span_id": "root", "kind": "agent", "name": HOSTILE[0],
                      "start_time": at, "end_time": at + pd.Timedelta(seconds=30 + n), "status": "ok",
                      "attributes": json.dumps({"prompt": MEGABYTE}) if n < 3 else None})
        for k in range(1 + n % 5):
            start = at + pd.Timedelta(seconds=5 * k + 1)
            spans.append({"trace_id": trace, "span_id": f"llm{k}", "parent_id": "root", "kind": "llm",
                          "name": HOSTILE[1], "model": "gpt-4o-mini" if n % 2 else HOSTILE[2],
                          "provider": "openai", "start_time": start, "end_time": start + pd.Timedelta(seconds=2),
                          "status": "ok", "input_tokens": 1000 + 37 * n, "output_tokens": 50 + k,
                          "reported_cost_usd": 0.001 * (1 + k)})
            spans.append({"trace_id": trace, "span_id": f"tool{k}", "parent_id": "root", "kind": "tool",
                          "name": HOSTILE[3], "tool_name": HOSTILE[k % 4],
                          "tool_arguments": MEGABYTE if n < 3 else '{"q": "<b>x</b>"}',
                          "start_time": start + pd.Timedelta(seconds=2),
                          "end_time": start + pd.Timedelta(seconds=3), "status": "error" if k == 2 else "ok"})
        traces.append({"trace_id": trace, "task_id": f"{HOSTILE[n % 3]} task {n % 8}", "trial": n // 8,
                       "variant": HOSTILE[n % 2], "success": n % 3 != 1, "score": float(n % 3 != 1),
                       "metadata": json.dumps({"note": HOSTILE[0], "blob": MEGABYTE if n == 0 else ""})})
    frame = pd.DataFrame(spans)
    frame["source"], frame["source_file"], frame["source_row"] = "test", "hostile.parquet", range(1, len(frame) + 1)
    return frame, pd.DataFrame(traces)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    spans, traces = hostile_spans(32)
    pq.write_table(schema.conform(spans, "spans"), folder / "spans.parquet")
    pq.write_table(schema.conform(traces, "traces"), folder / "run.traces.parquet")
    store = aiscale.load([folder / "spans.parquet", folder / "run.traces.parquet"], store=folder / "store")
    assert store.last_load.rows_quarantined == 0
    return store


def output_numbers(notebook_path) -> list[str]:
    """Every number shown in the executed notebook's text and HTML outputs (images left out)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts += [data.get("text/plain", ""), data.get("text/html", ""), output.get("text", "")]
    joined = "\n".join("".join(t) if isinstance(t, list) else t for t in texts)
    return re.findall(r"-?\d[\d,]*\.?\d*(?:e-?\d+)?", joined)


def test_fuzz_report_escapes_hostile_traces_stays_small_and_repeats_its_numbers(hostile_store, tmp_path):
    first = report(hostile_store, out=tmp_path / "a" / 'week<1>"x".html')
    second = report(hostile_store, out=tmp_path / "b" / 'week<1>"x".html')
    assert first.name == second.name == "week_1__x_.html"
    page = first.read_text()
    assert live_elements(page) == []
    shown = re.findall(r".{0,30}alert\(1\).{0,30}", page)
    assert shown and all("&lt;" in s for s in shown), shown[:5]  # the strings are shown, as text
    longest = max(len(run) for run in re.findall(r"m+", page))
    assert longest < 10_000, f"a {longest}-character run of the 1 MB prompt is in the report"
    assert first.stat().st_size < 3 * 2**20, f"report is {first.stat().st_size / 2**20:.1f} MB"
    numbers = output_numbers(first.with_suffix(".ipynb"))
    assert len(numbers) > 20
    assert numbers == output_numbers(second.with_suffix(".ipynb"))
