"""Render a parameterized notebook into one self-contained HTML report.

papermill executes the notebook (its first code cell is tagged ``parameters``), nbconvert
exports it with aiscale's template: figures embedded, code hidden unless asked, no script
and no external resource (a Content-Security-Policy forbids both), a table of contents
at the top. The executed ``.ipynb`` is kept beside the HTML. Both files appear only when
the whole notebook ran: a failing cell raises :class:`ReportExecutionError` naming the
cell, and nothing half-written is left behind. ``index.html`` in the output folder lists
the reports, newest first.

Before anything runs, the parameters are checked against the notebook's parameters cell
(:mod:`aiscale.report.parameters`) and the output name against files aiscale did not write
(:mod:`aiscale.report.outputs`). The kernel is this Python (the aiscale that renders is the
aiscale that runs the cells), reached over IPC sockets where the system has them. The report
notebooks and the template ship inside the package (``aiscale/report/notebooks``, generated
with the top-level ``notebooks/`` by ``scripts/build_notebooks.py``).

Examples
--------
>>> sorted(available_notebooks())
['compare', 'cost-investigation', 'overview']
"""

from __future__ import annotations

import html
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from aiscale.report.figures_ahead import ENV, LAST_CELL_TAG
from aiscale.report.outputs import check_output, write_index
from aiscale.report.parameters import check_parameters

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
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


def _notebook_path(notebook: str | Path) -> Path:
    candidate = Path(notebook)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate
    notebooks = available_notebooks()
    if str(notebook) not in notebooks:
        raise ValueError(f"The value for `notebook` must be one of {sorted(notebooks)} or a path "
                         f"to an .ipynb file, but {str(notebook)!r} was passed.")
    return notebooks[str(notebook)]


def _kernel_manager_class(folder: str) -> type:
    """A kernel manager for this Python's ipykernel, over IPC sockets in ``folder`` (TCP on Windows).

    This interpreter, whatever kernels Jupyter knows of, so the aiscale that renders is the one
    the cells import; IPC, so no port is opened and the kernel has no plain-TCP warning to print.
    """
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    # the kernel's own log stays quiet (an interrupt at shutdown is logged as an ERROR, not actionable)
    spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                            "--IPKernelApp.log_level=CRITICAL"],
                      display_name="Python 3 (aiscale)", language="python",
                      env={ENV: os.environ.get(ENV, "1")})  # figures drawn in a second process unless "0"

    class ThisPython(AsyncKernelManager):
        kernel_spec = property(lambda self: spec)

        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            if os.name != "nt":
                self.transport = "ipc"
                self.ip = os.path.join(folder, "kernel")

    return ThisPython


class _Progress:
    """One line per executed cell: its section (the ``##`` heading above it) and its time."""

    def __init__(self, notebook, stream: IO[str] | None):
        self.stream, self.started, self.labels = stream, 0.0, {}
        heading = "setup"
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                found = re.findall(r"^## +(.+?)\s*$", cell.source, flags=re.MULTILINE)
                heading = found[0] if found else heading
            elif cell.source.strip():
                tags = cell.metadata.get("tags", [])
                self.labels[cell.get("id")] = "parameters" if "parameters" in tags else heading

    def start(self, cell, cell_index: int) -> None:
        self.started = time.perf_counter()
        if self.stream is not None and cell.cell_type == "code" and cell.source.strip():
            tags = cell.metadata.get("tags", [])
            label = ("parameters given" if "injected-parameters" in tags else
                     "figures (the last ones drawn)" if LAST_CELL_TAG in tags else self.labels.get(cell.get("id"), ""))
            self.stream.write(f"  {label:<44}")
            self.stream.flush()

    def done(self, cell, cell_index: int, execute_reply=None) -> None:
        if self.stream is not None:
            failed = (execute_reply or {}).get("content", {}).get("status") == "error"
            self.stream.write(f"{time.perf_counter() - self.started:6.1f} s{'  failed' if failed else ''}\n")
            self.stream.flush()


def _execute(source: Path, executed: Path, parameters: dict[str, Any], cwd: Path,
             progress: IO[str] | None = None) -> None:
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    hooks = _Progress(nbformat.read(source, as_version=4), progress)
    with tempfile.TemporaryDirectory(prefix="aiscale-k") as sockets:  # short: socket paths are limited
        try:
            papermill.execute_notebook(str(source), str(executed), parameters=parameters,
                                       kernel_name="python3", progress_bar=False, cwd=str(cwd),
                                       log_output=False, request_save_on_cell_execute=False,
                                       kernel_manager_class=_kernel_manager_class(sockets),
                                       on_cell_start=hooks.start,
                                       shutdown_kernel="immediate",  # the last cell left it idle
                                       on_cell_executed=hooks.done)
        except PapermillExecutionError as exc:
            raise ReportExecutionError(source.stem, exc.exec_count, f"{exc.ename}: {exc.evalue}",
                                       exc.cell.get("source", "") if hasattr(exc, "cell") else "") from None


def _mark(executed: Path, notebook: str) -> None:
    """Record in the executed notebook's metadata that aiscale wrote it."""
    import nbformat

    import aiscale

    node = nbformat.read(executed, as_version=4)
    node.metadata["aiscale"] = {"version": aiscale.__version__, "notebook": notebook}
    nbformat.write(node, executed)


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
           parameters: dict[str, Any] | None = None, show_code: bool = False,
           progress: IO[str] | None = None) -> Path:
    """Execute a report notebook on a store and write one self-contained HTML file.

    Parameters
    ----------
    store : TraceStore or path
        The trace store the notebook reads (passed as the ``store`` parameter).
    notebook : str or Path, default="overview"
        A name from :func:`available_notebooks` or a path to a parameterized notebook.
    out : str or Path, default="reports/overview.html"
        The HTML file (a ``.html`` name, sanitised); the executed ``.ipynb`` goes beside it.
        A file of either name that aiscale did not write is never replaced.
    parameters : dict, optional
        Further notebook parameters (time window, variants, price sheet, budget, alpha...),
        checked against the notebook's parameters cell before anything runs.
    show_code : bool, default=False
        Keep the code cells in the HTML.
    progress : text stream, optional
        Where to print one line per section as it runs, with its time (the CLI uses stderr).

    Returns
    -------
    Path
        The HTML file written.

    Raises
    ------
    ValueError
        An unknown parameter, a value its parameter does not accept, or an output name
        that would overwrite a file aiscale did not write.
    ReportExecutionError
        A cell failed; nothing is written.

    Examples
    --------
    >>> report("no.store", out="r.ipynb")
    Traceback (most recent call last):
    ValueError: The report file must end in .html, but 'r.ipynb' was passed (...).
    """
    source = _notebook_path(notebook)
    out = check_output(out)
    checked = check_parameters(source, parameters or {}, name=source.stem)
    if "store" in checked:
        raise ValueError("The store is given by the `store` argument (`--store`), not as a parameter.")
    from aiscale.store.trace_store import TraceStore

    store_path = str(Path(store.root if isinstance(store, TraceStore) else store).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    say = progress.write if progress is not None else (lambda _text: None)
    say(f"rendering {source.stem} on {store_path}\n")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".render-") as tmp:
        executed = Path(tmp) / "executed.ipynb"
        _execute(source, executed, {"store": store_path, **checked}, cwd=Path(tmp), progress=progress)
        _mark(executed, source.stem)
        started = time.perf_counter()
        body = _export_html(executed, show_code)
        html_tmp = Path(tmp) / "report.html"
        html_tmp.write_text(body, encoding="utf-8")
        os.replace(executed, out.with_suffix(".ipynb"))
        os.replace(html_tmp, out)
        say(f"  {'HTML export':<44}{time.perf_counter() - started:6.1f} s\n")
    write_index(out.parent)
    return out
