"""Render a parameterized notebook into one self-contained HTML report.

papermill executes the notebook (its first code cell is tagged ``parameters``), nbconvert
exports it with aiscale's template: figures embedded, code hidden unless asked, no script
and no external resource (a Content-Security-Policy forbids both), a table of contents
at the top. The executed ``.ipynb`` is kept beside the HTML. Both files appear only when
the whole notebook ran: a failing cell raises :class:`ReportExecutionError` naming the
cell, and nothing half-written is left behind. ``index.html`` in the output folder lists
the reports, newest first.

Examples
--------
>>> "overview" in available_notebooks()
True
>>> safe_filename("weekly report: <b>.html")
'weekly_report___b_.html'
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class ReportExecutionError(RuntimeError):
    """A notebook cell failed while rendering a report; ``cell`` is its execution count."""

    def __init__(self, notebook: str, cell: int | None, error: str, source: str = ""):
        self.notebook, self.cell, self.error, self.source = notebook, cell, error, source
        where = f"cell {cell}" if cell is not None else "a cell"
        super().__init__(f"report notebook {notebook!r}: {where} failed: {error}\n{source[:500]}")


def available_notebooks() -> dict[str, Path]:
    """Return the report notebooks by name (file stem in ``notebooks/``)."""
    return {p.stem: p for p in sorted(NOTEBOOKS.glob("*.ipynb"))}


def safe_filename(name: str) -> str:
    """Return ``name`` with anything but letters, digits, dot, dash and underscore replaced."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "report.html"


def _notebook_path(notebook: str | Path) -> Path:
    candidate = Path(notebook)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate
    notebooks = available_notebooks()
    if str(notebook) not in notebooks:
        raise ValueError(f"The value for `notebook` must be one of {sorted(notebooks)} or a path "
                         f"to an .ipynb file, but {str(notebook)!r} was passed.")
    return notebooks[str(notebook)]


def _execute(source: Path, executed: Path, parameters: dict[str, Any], cwd: Path) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(str(source), str(executed), parameters=parameters,
                                   kernel_name="python3", progress_bar=False, cwd=str(cwd),
                                   log_output=False, request_save_on_cell_execute=False)
    except PapermillExecutionError as exc:
        raise ReportExecutionError(source.stem, exc.exec_count, f"{exc.ename}: {exc.evalue}",
                                   exc.cell.get("source", "") if hasattr(exc, "cell") else "") from None


def _add_toc(notebook) -> None:
    """Insert a table of contents (links to every ``##`` heading) after the first cell."""
    import nbformat

    headings = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            headings += re.findall(r"^## +(.+?)\s*$", cell.source, flags=re.MULTILINE)
    if not headings:
        return
    items = "".join(f'<li><a href="#{html.escape(h.replace(" ", "-"), quote=True)}">{html.escape(h)}</a></li>'
                    for h in headings)
    toc = nbformat.v4.new_markdown_cell(f'<div class="aiscale-toc"><b>Contents</b><ul>{items}</ul></div>')
    notebook.cells.insert(1, toc)


def _export_html(executed: Path, show_code: bool) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    _add_toc(notebook)
    exporter = HTMLExporter(template_name="aiscale_report", exclude_input=not show_code,
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(notebook)
    return body


def report(store: Any, *, notebook: str | Path = "overview", out: str | Path = "reports/overview.html",
           parameters: dict[str, Any] | None = None, show_code: bool = False) -> Path:
    """Execute a report notebook on a store and write one self-contained HTML file.

    Parameters
    ----------
    store : TraceStore or path
        The trace store the notebook reads (passed as the ``store`` parameter).
    notebook : str or Path, default="overview"
        A name from :func:`available_notebooks` or a path to a parameterized notebook.
    out : str or Path, default="reports/overview.html"
        The HTML file; its name is sanitised, and the executed ``.ipynb`` goes beside it.
    parameters : dict, optional
        Further notebook parameters (time window, variants, price sheet, budget, alpha...).
    show_code : bool, default=False
        Keep the code cells in the HTML.

    Returns
    -------
    Path
        The HTML file written.
    """
    source = _notebook_path(notebook)
    out = Path(out)
    out = out.with_name(safe_filename(out.name))
    out.parent.mkdir(parents=True, exist_ok=True)
    from aiscale.store.trace_store import TraceStore

    store_path = str(Path(store.root if isinstance(store, TraceStore) else store).resolve())
    params = {"store": store_path, **(parameters or {})}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".render-") as tmp:
        executed = Path(tmp) / "executed.ipynb"
        _execute(source, executed, params, cwd=Path(tmp))
        body = _export_html(executed, show_code)
        html_tmp = Path(tmp) / "report.html"
        html_tmp.write_text(body, encoding="utf-8")
        os.replace(executed, out.with_suffix(".ipynb"))
        os.replace(html_tmp, out)
    write_index(out.parent)
    return out


def write_index(folder: str | Path) -> Path:
    """Write ``index.html`` listing the reports in ``folder``, newest first."""
    folder = Path(folder)
    reports = sorted((p for p in folder.glob("*.html") if p.name != "index.html"),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    rows = "".join(
        f'<tr><td><a href="{html.escape(p.name, quote=True)}">{html.escape(p.stem)}</a></td>'
        f"<td>{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(p.stat().st_mtime))}</td>"
        f"<td>{p.stat().st_size / 1024:.0f} KB</td></tr>"
        for p in reports)
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            "<title>aiscale reports</title></head><body><h1>aiscale reports</h1>"
            f"<table><tr><th>report</th><th>rendered</th><th>size</th></tr>{rows}</table></body></html>")
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
