"""Figures drawn in a second process while the report kernel goes on: the executed notebook holds
the same outputs, byte for byte, as drawing in the kernel gives; a figure the worker cannot take
is drawn in the kernel; and nothing changes outside a report kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import aiscale
from aiscale.report import figures_ahead
from aiscale.report import render as report
from aiscale.report.figures_ahead import ENV

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return aiscale.load([REPO / "data" / "demo"], store=tmp_path_factory.mktemp("demo") / "store")


def _outputs(path: Path) -> list:
    return [cell.get("outputs", []) for cell in nbformat.read(path, as_version=4).cells]


def test_the_overview_drawn_ahead_equals_the_overview_drawn_in_the_kernel(demo_store, tmp_path, monkeypatch):
    executed = {}
    for mode in ("0", "1"):
        monkeypatch.setenv(ENV, mode)
        executed[mode] = tmp_path / f"overview-{mode}.ipynb"
        report._execute(report.available_notebooks()["overview"], executed[mode],
                        {"store": str(demo_store.root)}, tmp_path)
    inline, ahead = _outputs(executed["0"]), _outputs(executed["1"])
    assert inline == ahead
    pngs = [o for cell in ahead for o in cell if "image/png" in o.get("data", {})]
    assert len(pngs) >= 10  # every section's figure, none left as a placeholder
    assert not [o for cell in ahead for o in cell
                if o.get("output_type") == "display_data" and set(o["data"]) == {"text/plain"}]


def _notebook(tmp_path: Path, cells: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "cells.ipynb"
    nbformat.write(notebook, path)
    return path


def test_figures_the_worker_cannot_take_are_drawn_in_the_kernel(tmp_path):
    """A figure with a formatter defined in a cell cannot be pickled, and a display set up for SVG
    is not the worker's PNG: both are drawn where they are shown. A plain figure is drawn ahead,
    its placeholder filled by the last cell."""
    setup = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nfrom matplotlib.ticker import FuncFormatter\n"
             "from aiscale.report import context as sections\nfrom aiscale.report import figures_ahead")
    plain = ("fig, ax = plt.subplots(); ax.plot([1, 2, 3])\n"
             "print(figures_ahead.enabled())\nsections.show(sections.Section('plain', figure=fig))")
    local = ("fig, ax = plt.subplots(); ax.plot([1, 2]); ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v}!'))\n"
             "print(figures_ahead.draw_ahead(fig))\nsections.show(sections.Section('local', figure=fig))")
    svg = ("%config InlineBackend.figure_formats = ['svg']\nfig, ax = plt.subplots(); ax.plot([1, 2])\n"
           "print(figures_ahead.draw_ahead(fig))\nsections.show(sections.Section('svg', figure=fig))")
    source = _notebook(tmp_path, [setup, plain, local, svg, "sections.finish()"])
    report._execute(source, tmp_path / "out.ipynb", {}, tmp_path)
    cells = _outputs(tmp_path / "out.ipynb")
    stream = lambda cell: "".join(o.get("text", "") for o in cell if o["output_type"] == "stream").split()  # noqa: E731
    images = lambda cell: [sorted(o["data"]) for o in cell if o["output_type"] == "display_data"  # noqa: E731
                           and "text/html" not in o["data"]]
    assert stream(cells[1]) == ["True"] and images(cells[1]) == [["image/png", "text/plain"]]
    assert stream(cells[2]) == ["False"] and images(cells[2]) == [["image/png", "text/plain"]]
    assert stream(cells[3]) == ["False"] and images(cells[3]) == [["image/svg+xml", "text/plain"]]


def test_outside_a_report_kernel_nothing_is_drawn_ahead(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    monkeypatch.delenv(ENV, raising=False)
    assert not figures_ahead.enabled() and not figures_ahead.draw_ahead(fig)
    monkeypatch.setenv(ENV, "1")
    assert figures_ahead.enabled() and not figures_ahead.draw_ahead(fig)  # no IPython shell: drawn where shown
    plt.close(fig)


def test_a_report_kernel_starts_the_worker_and_its_imports_before_the_first_figure(monkeypatch):
    monkeypatch.setattr(figures_ahead, "_worker", None)
    monkeypatch.delenv(ENV, raising=False)
    figures_ahead.start_worker()
    assert figures_ahead._worker is None  # outside a report kernel: no process
    monkeypatch.setenv(ENV, "1")
    figures_ahead.start_worker()
    pool = figures_ahead._worker
    try:
        assert pool is not None
        imported = "[m in __import__('sys').modules for m in ('matplotlib.pyplot', 'IPython.core.pylabtools')]"
        assert pool.submit(eval, imported).result(timeout=120) == [True, True]  # imported once it started
    finally:
        pool.shutdown()


def test_a_report_prints_no_traceback_when_its_kernel_and_worker_are_stopped(demo_store, tmp_path):
    """The kernel's process group is interrupted when it is stopped; the worker ignores it."""
    run = subprocess.run([sys.executable, "-m", "aiscale.cli", "report", "--store", str(demo_store.root),
                          "-o", str(tmp_path / "overview.html")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr
    assert "figures (the last ones drawn)" in run.stderr
    executed = json.loads((tmp_path / "overview.ipynb").read_text())
    assert sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", [])) >= 10
