"""Reports: papermill really executes the notebooks, nbconvert exports, Chromium opens the HTML."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest
from spanbuilder import agent_trace

import aiscale
from aiscale import schema
from aiscale.cli.main import main as cli_main
from aiscale.report import render
from aiscale.report.render import ReportExecutionError, report

REPO = Path(__file__).resolve().parents[1]

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    spans = pd.concat([agent_trace(f"t{i}") for i in range(6)], ignore_index=True)
    spans.loc[spans.kind == "tool", "tool_name"] = EVIL
    traces = pd.DataFrame({"trace_id": [f"t{i}" for i in range(6)], "task_id": [f"task{i % 3}" for i in range(6)],
                           "trial": [i // 3 for i in range(6)], "success": [True, False, True, True, False, True],
                           "variant": [EVIL if i % 2 else "agent-v1" for i in range(6)]})
    pq.write_table(schema.conform(spans, "spans"), tmp / "spans.parquet")
    pq.write_table(schema.conform(traces, "traces"), tmp / "run.traces.parquet")
    return aiscale.load([tmp / "spans.parquet", tmp / "run.traces.parquet"], store=tmp / "store")


def external_resources(page: str) -> list[str]:
    return re.findall(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//[^"\'\s>]+', page)


def test_overview_renders_self_contained_with_every_section(small_store, tmp_path):
    out = report(small_store, out=tmp_path / "overview.html")
    page = out.read_text()
    for heading in ("Spend", "Loop pathologies", "Latency"):
        assert f">{heading}<" in page
    assert "data:image/png;base64," in page  # figures embedded
    assert external_resources(page) == []
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert "Content-Security-Policy" in page
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert "Contents" in page and 'href="#Latency"' in page
    index = (tmp_path / "index.html").read_text()
    assert 'href="overview.html"' in index


def test_a_failing_cell_names_the_cell_and_leaves_nothing(small_store, tmp_path):
    notebook = nbformat.read(render.available_notebooks()["overview"], as_version=4)
    notebook.cells.insert(4, nbformat.v4.new_code_cell("raise RuntimeError('planted failure')"))
    broken = tmp_path / "broken.ipynb"
    nbformat.write(notebook, broken)
    with pytest.raises(ReportExecutionError, match=r"cell \d+ failed: RuntimeError: planted failure"):
        report(small_store, notebook=broken, out=tmp_path / "out" / "broken.html")
    assert not (tmp_path / "out" / "broken.html").exists()
    assert not list((tmp_path / "out").glob("*.ipynb"))


def test_empty_window_says_so_instead_of_failing(small_store, tmp_path):
    assert cli_main(["report", "--store", str(small_store.root), "-o", str(tmp_path / "w.html"),
                     "--since", "2099-01-01"]) == 0
    assert "No traces in this window" in (tmp_path / "w.html").read_text()


def test_report_file_names_are_sanitised(small_store, tmp_path):
    out = report(small_store, out=tmp_path / "a b<i>.html")
    assert out.name == "a_b_i_.html" and out.exists()


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("Debian's chromium is required (make test installs it): apt-get install chromium")
    return binary


def test_chromium_renders_without_console_errors_and_trace_strings_stay_text(small_store, tmp_path, chromium):
    out = report(small_store, out=tmp_path / "overview.html")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--dump-dom", out.resolve().as_uri()]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    dom = result.stdout
    assert "Cost attribution" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    assert EVIL not in dom  # never as a live element


SECTIONS = {
    "overview": ["Spend over time", "Spend per model, project and day", "Spend", "Cost distribution and tails", "Cost attribution",
                 "Cache savings", "Reported versus computed cost", "Iterations",
                 "Loop pathologies", "Loop budget", "Reliability",
                 "Cost, reliability and latency frontier", "Latency", "Spend forecast",
                 "What-if re-pricing", "Drift"],
    "cost-investigation": ["Why spend changed", "Where the money went", "Spend per model, project and day",
                           "Cache savings",
                           "What if the same calls ran elsewhere", "Reported versus computed cost",
                           "Most expensive traces", "Change versus baseline"],
    "compare": ["Head to head", "Reliability", "Cost, reliability and latency frontier", "Latency"],
}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    demo = REPO / "data" / "demo"
    store = aiscale.load([demo], store=tmp_path_factory.mktemp("demo") / "store")
    assert store.last_load.rows_quarantined == 0 and store.last_load.rows_loaded > 1000
    return store


REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    return aiscale.load([REAL / "mini-swe-agent-gemini3-verified", REAL / "tau-bench-historical"],
                        store=tmp_path_factory.mktemp("real") / "store")


def assert_rendered(out, notebook):
    page = out.read_text()
    for heading in SECTIONS[notebook]:
        assert f">{heading}<" in page, heading
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "error"] == []
    assert not any("not computed" in str(o.get("data", {}).get("text/html", "")) for o in outputs), \
        [o["data"]["text/html"] for o in outputs if "not computed" in str(o.get("data", {}))]
    assert external_resources(page) == []
    return page


@pytest.mark.parametrize("notebook", sorted(SECTIONS))
def test_every_notebook_renders_on_the_demo(demo_store, tmp_path, notebook):
    parameters = {"baseline_since": "2025-06-01", "baseline_until": "2025-06-08",
                  "since": "2025-06-08"} if notebook == "cost-investigation" else {}
    out = report(demo_store, notebook=notebook, out=tmp_path / f"{notebook}.html", parameters=parameters)
    page = assert_rendered(out, notebook)
    assert page.count("data:image/png;base64,") >= (8 if notebook == "overview" else 2)
    if notebook == "overview":  # the demo's planted drift (strong: output tokens x1.6) is found
        assert "strong output_tokens_per_call +" in page
        assert "Prompt caching served" in page and "over 14 day(s)" in page
    if notebook == "cost-investigation":  # leads with the decomposition against the baseline
        assert page.index("Spend went from") < page.index("costliest traces hold")


@pytest.mark.parametrize("notebook", ["overview", "cost-investigation"])
def test_notebooks_render_on_real_agent_traces(real_store, tmp_path, notebook):
    parameters = ({"models": ["google/gemini-3-pro-preview"], "baseline_until": "2025-11-19",
                   "since": "2025-11-19"} if notebook == "cost-investigation" else {})
    out = report(real_store, notebook=notebook, out=tmp_path / f"{notebook}.html", parameters=parameters)
    page = assert_rendered(out, notebook)
    assert "gemini-3-pro-preview" in page
    assert "Reported and computed cost agree within 1% for every model" in page
    if notebook == "overview":
        assert "gpt-4o" in page


def test_compare_renders_on_the_swebench_leaderboard(tmp_path):
    store = aiscale.load([REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"], store=tmp_path / "s")
    out = report(store, notebook="compare", out=tmp_path / "compare.html",
                 parameters={"a": "20250807_mini-v1.7.0_gpt-5", "b": "20250807_mini-v1.7.0_gpt-5-mini"})
    page = assert_rendered(out, "compare")
    assert "on 500 shared tasks" in page


def test_overview_on_a_per_request_table_fits_tokens_censored_at_the_cap(tmp_path):
    conv = REAL / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv"
    columns = {"TIMESTAMP": "started_at", "ContextTokens": "input_tokens", "GeneratedTokens": "output_tokens"}
    out = report(conv, out=tmp_path / "azure.html", parameters={"columns": columns, "max_output_tokens": 1000})
    page = assert_rendered(out, "overview")
    capped = int((pd.read_csv(conv)["GeneratedTokens"] >= 1000).sum())
    assert f"with the {capped:,} traces at the 1,000-token cap treated as right-censored" in page
    assert "cost is unknown for all 19,366 traces. It is not zero." in page
