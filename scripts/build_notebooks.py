"""Write the report notebooks from the cell lists below: the one source of both copies.

Each notebook is written twice, byte for byte the same: in ``notebooks/`` for JupyterLab
users, and in ``aiscale/report/notebooks/`` where the installed package finds it (the wheel
carries it; ``aiscale report`` renders it). Never edit either copy by hand:
``tests/test_packaging.py`` fails when a copy differs from what this script writes. Run it
after editing the cells (a parameters cell first, then one short cell per section):

    .venv/bin/python scripts/build_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from aiscale.report.figures_ahead import LAST_CELL_TAG

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "notebooks"  # for JupyterLab
PACKAGED = REPO / "aiscale" / "report" / "notebooks"  # what the installed package renders

COMMON_PARAMETERS = '''# the trace store folder made by `aiscale load PATH --store DIR` (here: the demo of `make report`)
store = "../reports/demo.store"
# time window: since is "7d", "24h" or an ISO date, until an ISO date; None means all data
since = None
until = None
# variants to include (a list), None means all; a price sheet overriding genai-prices
variants = None
prices = None
# significance level of intervals and tests
alpha = 0.05
# when `store` is a per-trace table (CSV, Parquet, JSON lines): its column map to fact columns
columns = None'''

OPEN = '''import warnings
warnings.filterwarnings("ignore")
import aiscale
from aiscale.report import context as sections
from aiscale.report import sections_analysis as analysis
from aiscale.report import sections_breakdown as breakdown
from aiscale.report import sections_core as core
from aiscale.report import sections_investigate as investigate
from aiscale.report import sections_loops as loops
from aiscale.report import sections_money as money
from aiscale.report import sections_spend as spend
{ahead}ctx = {opener}(store, since=since, until=until, variants=variants, prices=prices,
{indent}columns=columns)
%matplotlib inline
import matplotlib
matplotlib.rcParams["text.parse_math"] = False  # names from traces are text, never math
{narrow}sections.show(sections.provenance(ctx, dict(store=store, since=since, until=until,
                                            variants=variants, prices=prices, alpha=alpha{extra})))'''


def _open(*, ahead: bool = False, **fields: str) -> str:
    """The setup cell. With ``ahead`` the store is opened reading ahead (aiscale.report.prefetch):
    the calls, the loop table and matplotlib are read and imported while the facts roll up, so
    ``%matplotlib inline`` comes after the store is opened."""
    opener = "prefetch.open_reading_ahead" if ahead else "sections.open_context"
    return OPEN.format(opener=opener, indent=" " * len(f"ctx = {opener}("),
                       ahead="from aiscale.report import prefetch\n" if ahead else "", **fields)


OVERVIEW = [
    ("md", "# Scaling health overview\n\nWhat this system's traces say about spend, loops, "
           "reliability, latency and what comes next. Each section opens with its finding."),
    ("parameters", COMMON_PARAMETERS + '''
# forecast: budget in USD over the horizon, traffic in traces per day (None means the current rate)
budget_usd = None
traffic_per_day = None
horizon_days = 30
# the max_tokens cap of the calls, if any: outputs at the cap are right-censored in the fit
max_output_tokens = None
# what-if: models to re-price every call as (a list; None: the other models the window used)
whatif_models = None
# show reported vs computed cost per model when they differ by more than this share
reconcile_threshold = 0.01'''),
    ("code", _open(ahead=True, narrow="", extra=", budget_usd=budget_usd, traffic_per_day=traffic_per_day, "
                                         "horizon_days=horizon_days, max_output_tokens=max_output_tokens")),
    ("md", "## Spend over time"),
    ("code", "sections.show(spend.spend_over_time(ctx, prices=prices))"),
    ("md", "## Spend per model, project and day"),
    ("code", "for section in breakdown.spend_breakdowns(ctx, prices=prices):\n    sections.show(section)"),
    ("md", "## Spend"),
    ("code", "sections.show(core.spend(ctx))"),
    ("md", "## Cost distribution and tails"),
    ("code", "sections.show(money.cost_distribution(ctx))"),
    ("md", "## Cost attribution"),
    ("code", "sections.show(money.attribution(ctx))"),
    ("md", "## Cache savings"),
    ("code", "sections.show(spend.cache(ctx, prices=prices))"),
    ("md", "## Reported versus computed cost"),
    ("code", "sections.show(spend.reported_vs_computed(ctx, threshold=reconcile_threshold, prices=prices))"),
    ("md", "## Token distribution"),
    ("code", "sections.show(money.token_distribution(ctx, max_output_tokens=max_output_tokens))"),
    ("md", "## Iterations"),
    ("code", "sections.show(loops.iteration_fit(ctx))"),
    ("md", "## Loop pathologies"),
    ("code", "sections.show(loops.pathologies(ctx))"),
    ("md", "## Loop budget"),
    ("code", "sections.show(loops.budget(ctx))"),
    ("md", "## Reliability"),
    ("code", "sections.show(analysis.reliability(ctx))"),
    ("md", "## Cost, reliability and latency frontier"),
    ("code", "sections.show(analysis.frontier(ctx))"),
    ("md", "## Latency"),
    ("code", "sections.show(analysis.latency(ctx))\nsections.show(spend.call_latency(ctx))"),
    ("md", "## Spend forecast"),
    ("code", "sections.show(analysis.forecast(ctx, traffic_per_day=traffic_per_day, "
             "horizon_days=horizon_days, budget_usd=budget_usd))"),
    ("md", "## What-if re-pricing"),
    ("code", "sections.show(spend.whatif(ctx, models=whatif_models, prices=prices))"),
    ("md", "## Drift"),
    ("code", "sections.show(analysis.drift(ctx, alpha=alpha))"),
]

INVESTIGATION = [
    ("md", "# Cost investigation\n\nWhy spend changed (volume, mix, work per trace, price), where the "
           "money went for one selection of traces, what caching saved, the most expensive traces call "
           "by call, and what changed against a baseline window."),
    ("parameters", COMMON_PARAMETERS + '''
# narrow the selection: models or tools used, users, trace ids (lists), None means no filter
models = None
tools = None
users = None
trace_ids = None
# the baseline window to compare with (ISO dates), and how many traces to list
baseline_since = None
baseline_until = None
top = 10
# what-if: models to re-price every call as (a list; None: the other models the window used)
whatif_models = None
# show reported vs computed cost per model when they differ by more than this share
reconcile_threshold = 0.01'''),
    ("code", _open(
        narrow="ctx = investigate.narrow(ctx, models=models, users=users, tools=tools, trace_ids=trace_ids)\n",
        extra=", models=models, tools=tools, users=users, trace_ids=trace_ids, "
              "baseline_since=baseline_since, baseline_until=baseline_until")),
    ("md", "## Why spend changed"),
    ("code", "sections.show(spend.why_spend_changed(ctx, store=store, baseline_since=baseline_since, "
             "baseline_until=baseline_until, prices=prices))"),
    ("md", "## Where the money went"),
    ("code", "sections.show(spend.spend_over_time(ctx, prices=prices))\nsections.show(core.spend(ctx))\n"
             "sections.show(money.attribution(ctx))"),
    ("md", "## Spend per model, project and day"),
    ("code", "for section in breakdown.spend_breakdowns(ctx, prices=prices):\n    sections.show(section)"),
    ("md", "## Cache savings"),
    ("code", "sections.show(spend.cache(ctx, prices=prices))"),
    ("md", "## What if the same calls ran elsewhere"),
    ("code", "sections.show(spend.whatif(ctx, models=whatif_models, prices=prices))"),
    ("md", "## Reported versus computed cost"),
    ("code", "sections.show(spend.reported_vs_computed(ctx, threshold=reconcile_threshold, prices=prices))"),
    ("md", "## Most expensive traces"),
    ("code", "sections.show(investigate.expensive_traces(ctx, top=top))"),
    ("md", "## Change versus baseline"),
    ("code", "sections.show(investigate.versus_baseline(ctx, store=store, baseline_since=baseline_since, "
             "baseline_until=baseline_until, alpha=alpha))"),
]

COMPARE = [
    ("md", "# Compare variants\n\nTwo variants head to head on the same tasks, where they sit on "
           "the frontier, and how many runs a decision needs."),
    ("parameters", COMMON_PARAMETERS + '''
# the baseline variant a and the challenger b (None: the two variants with most traces)
a = None
b = None
# the smallest difference in success worth detecting (for the runs needed)
effect = 0.05'''),
    ("code", _open(narrow="", extra=", a=a, b=b, effect=effect")),
    ("md", "## Head to head"),
    ("code", "sections.show(investigate.comparison(ctx, a=a, b=b, effect=effect, alpha=alpha))"),
    ("md", "## Reliability"),
    ("code", "sections.show(analysis.reliability(ctx))"),
    ("md", "## Cost, reliability and latency frontier"),
    ("code", "sections.show(analysis.frontier(ctx))"),
    ("md", "## Latency"),
    ("code", "sections.show(analysis.latency(ctx))"),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == "md":
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            notebook.cells.append(cell)
    last = nbformat.v4.new_code_cell("sections.finish()  # the figures drawn beside the sections, each put "
                                     "where it was shown")
    last.metadata["tags"] = [LAST_CELL_TAG]
    notebook.cells.append(last)
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number:02d}"
    return notebook


def notebooks() -> dict[str, str]:
    """The text of each report notebook by file name."""
    return {f"{name}.ipynb": nbformat.writes(build(cells)) + "\n"
            for name, cells in {"overview": OVERVIEW, "cost-investigation": INVESTIGATION,
                                "compare": COMPARE}.items()}


def main() -> None:
    for folder in (ROOT, PACKAGED):
        folder.mkdir(exist_ok=True)
        for name, text in notebooks().items():
            (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
