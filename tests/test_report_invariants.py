"""Cross-section invariants of the rendered reports, on the demo and on real data of every kind.

Each notebook is rendered once per dataset (module-scoped, papermill and nbconvert for real);
the test reads the executed notebook: every section writes the figures its finding rests on
as output metadata (``aiscale``). Checked against the facts the store returns, priced the
same way (with and without a price sheet):

- every cost total equals the facts' total; attribution sums to it; the costliest traces
  listed carry their facts' cost;
- a variant or trace of unknown cost is never shown as a number (never summed as 0);
- no headline rests on a group smaller than the stated minimum;
- spend per model, project and day sums to the facts' total (priced calls; unknown never 0);
- the LLM share of latency is at most 1 (parallel calls count once);
- no "nan" or "NaN" in any finding or table: unknown is written as unknown;
- every section shows a finding or says why not, and no cell fails.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import aiscale
from aiscale.report.context import MIN_GROUP, merge_aliases
from aiscale.report.render import report

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
CSV_COLUMNS = {"run": "trace_id", "instance": "task_id", "agent": "variant", "passed": "success",
               "usd": "reported_cost_usd", "calls": "n_llm_calls", "started": "started_at"}


def _csv(tmp: Path) -> Path:
    """A per-trace CSV with its own column names: the tau2 simulations' facts as a team exports them."""
    facts = aiscale.load(sorted((REAL / "tau2-bench-results").glob("*trials.json")), store=tmp / "src").facts()
    table = facts[list(CSV_COLUMNS.values())].rename(columns={v: k for k, v in CSV_COLUMNS.items()})
    path = tmp / "runs.csv"
    table.to_csv(path, index=False)
    return path


DATASETS = {
    "demo": lambda tmp: [REPO / "data" / "demo"],
    "mini-swe-agent": lambda tmp: [REAL / "mini-swe-agent-gemini3-verified"],
    "tau2": lambda tmp: sorted((REAL / "tau2-bench-results").glob("*trials.json")),
    "tau-bench": lambda tmp: [REAL / "tau-bench-historical" / "gpt-4o-airline.json"],
    "swebench-leaderboard": lambda tmp: [REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"],
    "claude-code": lambda tmp: [REAL / "claude-code-sessions"],
    "codex": lambda tmp: [REAL / "codex-sessions"],
    "inspect": lambda tmp: [REAL / "inspect-logs"],
}
NOTEBOOKS = ("overview", "cost-investigation", "compare")
# The full matrix runs in `make slow`; `make test` renders each dataset once and each notebook
# on the demo (with and without a price sheet), keeping the suite's time sane.
FAST = {("demo", "overview"), ("demo", "cost-investigation"), ("demo+sheet", "overview"),
        ("demo+sheet", "cost-investigation"), ("mini-swe-agent", "overview"), ("tau2", "overview"),
        ("tau-bench", "overview"), ("swebench-leaderboard", "compare"), ("per-trace-csv", "overview"),
        ("codex", "overview"), ("inspect", "overview")}  # Claude Code renders in its loader's tests
CASES = [pytest.param(d, n, marks=() if (d, n) in FAST else pytest.mark.slow, id=f"{d}-{n}")
         for d in (*DATASETS, "demo+sheet", "per-trace-csv") for n in NOTEBOOKS]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Stores (or the table) and their expected facts, built once per dataset on first use."""
    made: dict[str, tuple] = {}
    tmp = tmp_path_factory.mktemp("invariants")

    def get(name: str):
        if name in made:
            return made[name]
        sheet = None
        if name == "per-trace-csv":
            source = _csv(tmp / "csv")
            facts = aiscale.load_facts(source, columns=CSV_COLUMNS, row_ids=True)
            parameters = {"columns": CSV_COLUMNS}
        else:
            base = name.split("+")[0]
            store = get(base)[0] if base != name else aiscale.load(DATASETS[name](tmp), store=tmp / name)
            if name.endswith("+sheet"):
                sheet = tmp / "prices.yaml"
                sheet.write_text("- model: '*'\n  per_call_usd: 0.01\n")
            source, facts = store, store.facts(prices=sheet)
            parameters = {"prices": str(sheet)} if sheet else {}
        facts = facts.assign(variant=merge_aliases(facts["variant"])[0])
        made[name] = (source, facts, parameters)
        return made[name]

    return get


def expected_cost(facts: pd.DataFrame) -> pd.Series:
    """The rule, restated: aiscale's price, else the source's; a reported 0 for used tokens is unknown."""
    reported = facts["reported_cost_usd"].astype(float)
    used = sum(facts[c].astype(float).fillna(0) for c in ("input_tokens", "output_tokens", "n_llm_calls")
               if c in facts) > 0
    reported = reported.mask((reported == 0) & used)
    return facts["cost_usd"].astype(float).fillna(reported)


def payloads(notebook: nbformat.NotebookNode) -> list[dict]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output.get("evalue")
            if "aiscale" in output.get("metadata", {}):
                found.append(output["metadata"]["aiscale"])
    return found


def close(a: float | None, b: float) -> bool:
    if a is None:
        return math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(("dataset", "notebook"), CASES)
def test_sections_agree_with_the_facts(sources, tmp_path, dataset, notebook):
    source, facts, parameters = sources(dataset)
    out = report(source, notebook=notebook, out=tmp_path / f"{notebook}.html", parameters=parameters)
    sections = payloads(nbformat.read(out.with_suffix(".ipynb"), as_version=4))
    n_cells = sum(1 for c in nbformat.read(out.with_suffix(".ipynb"), as_version=4).cells
                  if c.cell_type == "code" and "sections.show(" in c.source)
    assert len(sections) >= n_cells  # every section shows something
    assert all(s["status"] in ("finding", "why not") and s["finding"].strip() for s in sections)
    cost = expected_cost(facts)
    total = cost.sum(min_count=1)
    for section in sections:
        if "cost_total" in section:
            assert close(section["cost_total"], total), section["finding"]
        if "attribution_total" in section:
            assert close(section["attribution_total"], section["cost_total"]), section["finding"]
        if "variant_totals" in section:
            truth = cost.groupby(facts["variant"].astype(str)).sum(min_count=1)
            for variant, value in section["variant_totals"].items():
                assert close(value, truth[variant]), (variant, value)  # unknown stays unknown, not 0
        if "mean_cost" in section:
            known = facts["success"].notna()
            truth = cost[known].groupby(facts.loc[known, "variant"].astype(str)).mean()
            for variant, value in section["mean_cost"].items():
                assert close(value, truth.get(variant, np.nan)), (variant, value)
                assert (value is None) == (variant in section["unpriced_variants"])
        if "listed" in section:
            by_id = cost.set_axis(facts["trace_id"].astype(str))
            for trace_id, value in section["listed"].items():
                assert close(value, by_id[trace_id]), trace_id
        if section.get("headline_n") is not None:
            assert section["headline_n"] >= MIN_GROUP == section["min_group"], section["finding"]
        if "groups" in section:  # spend per model, project or day
            known = [v for v in section["groups"].values() if v is not None]
            assert close(math.fsum(known), section["total_usd"]), section["finding"]
            assert close(section["facts_total_usd"], facts["cost_usd"].astype(float).sum(min_count=1))
            calls, unpriced = facts["n_llm_calls"].fillna(0), facts["unpriced_llm_calls"].fillna(0)
            if not ((unpriced > 0) & (unpriced < calls)).any():  # no trace mixes priced and unpriced
                assert math.isclose(section["total_usd"], section["facts_total_usd"], rel_tol=1e-9)
        for variant, share in section.get("llm_shares", {}).items():
            assert share is None or share <= 1 + 1e-9, (variant, share)
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    texts = [s["finding"] for s in sections] + [
        str(o.get("data", {}).get("text/html", "")) for c in executed.cells for o in c.get("outputs", [])]
    shown = [t for t in texts if re.search(r"\bnan\b|\bNaT\b|&lt;NA&gt;|<NA>|<td>None</td>", t, re.IGNORECASE)]
    assert shown == [], shown[0][:300] if shown else None
    if dataset != "per-trace-csv" and notebook != "compare" and total == total:
        assert any("cost_total" in s for s in sections)
