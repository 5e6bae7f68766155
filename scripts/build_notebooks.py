"""Write the report notebooks in notebooks/ from the cell lists below.

The notebooks are the source users open in JupyterLab; this script is how they are kept
tidy (a parameters cell first, then one short cell per section). Run it after editing:

    .venv/bin/python scripts/build_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1] / "notebooks"

COMMON_PARAMETERS = '''# the trace store folder made by `aiscale load PATH --store DIR`
store = "reports/demo.store"
# time window: since is "7d", "24h" or an ISO date, until an ISO date; None means all data
since = None
until = None
# variants to include (a list), None means all; a price sheet overriding genai-prices
variants = None
prices = None
# significance level of intervals and tests
alpha = 0.05'''

OPEN = '''%matplotlib inline
import warnings
warnings.filterwarnings("ignore")
import aiscale
from aiscale import sections, sections_core
ctx = sections.open_context(store, since=since, until=until, variants=variants, prices=prices)
sections.show(sections.provenance(ctx, dict(store=store, since=since, until=until,
                                            variants=variants, prices=prices, alpha=alpha{extra})))'''

OVERVIEW = [
    ("md", "# Scaling health overview\n\nWhat this system's traces say about spend, loops, "
           "reliability, latency and what comes next. Each section opens with its finding."),
    ("parameters", COMMON_PARAMETERS + '''
# forecast: budget in USD over the horizon, traffic in traces per day (None means the current rate)
budget_usd = None
traffic_per_day = None
horizon_days = 30'''),
    ("code", OPEN.format(extra=", budget_usd=budget_usd, traffic_per_day=traffic_per_day, horizon_days=horizon_days")),
    ("md", "## Spend and predictability"),
    ("code", "sections.show(sections_core.spend(ctx))"),
    ("md", "## Iterations and loop pathologies"),
    ("code", "sections.show(sections_core.iterations(ctx))"),
    ("md", "## Latency"),
    ("code", "sections.show(sections_core.latency(ctx))"),
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
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number:02d}"
    return notebook


def main() -> None:
    ROOT.mkdir(exist_ok=True)
    for name, cells in {"overview": OVERVIEW}.items():
        nbformat.write(build(cells), ROOT / f"{name}.ipynb")


if __name__ == "__main__":
    main()
