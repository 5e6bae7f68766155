"""Draw a rendered report's figures in a second process while the kernel computes the next section.

Drawing and encoding a figure (tick, text and legend layout, rasterising, PNG) takes 0.05-0.4 s
of the kernel's single thread, ~2 s over the overview, while the machine's other core is idle.
When the report renderer starts the kernel (it sets :data:`ENV`), :func:`draw_ahead` pickles the
figure (~5 ms), displays a placeholder with a display id, and hands the pickle to one worker
process, which draws it as IPython's inline backend would (the same function and arguments, the
kernel's rcParams); :func:`place_drawn` puts each finished drawing in its placeholder (nbclient
updates the output where it was displayed), and :func:`wait_for_figures`, the notebooks' last
cell, waits for the rest. The executed notebook holds the same PNG, byte for byte, as drawing in
the kernel gives.

Anywhere else (JupyterLab, a script) nothing changes: the figure is drawn where it is displayed.
A figure that cannot be pickled, a display set up for other formats, or a failing worker are
drawn in the kernel too.

Examples
--------
>>> import os
>>> enabled() == (os.environ.get(ENV) == "1")
True
"""

from __future__ import annotations

import functools
import os
import pickle
from typing import Any

ENV = "AISCALE_FIGURES_AHEAD"
"""Set to ``"1"`` in a report kernel's environment: figures are drawn in the worker."""

LAST_CELL_TAG = "figures"
"""The tag of each report notebook's last cell (``sections.finish()``), which waits for them."""

_worker = None
_pending: list[tuple[Any, Any, Any, dict]] = []  # (future, display handle, figure, PNG arguments)


def enabled() -> bool:
    """Whether this process draws figures ahead (a report kernel with :data:`ENV` set)."""
    return os.environ.get(ENV) == "1"


def draw_ahead(figure) -> bool:
    """Display a placeholder for ``figure`` and draw it in the worker; False (nothing displayed)
    when it must be drawn here: not a report kernel, a display set up for other formats than PNG,
    or a figure that cannot be pickled."""
    if not enabled():
        return False
    arguments = _png_arguments(figure)
    if arguments is None:
        return False
    try:
        pickled = pickle.dumps(figure)
    except Exception:  # noqa: BLE001 - e.g. a formatter defined in a cell: drawn here instead
        return False
    import matplotlib
    from IPython.display import display

    handle = display({"text/plain": repr(figure)}, raw=True, display_id=True)
    try:
        rc = {key: value for key, value in matplotlib.rcParams.items() if key != "backend"}
        future = _pool().submit(draw, pickled, rc, arguments)
    except Exception:  # noqa: BLE001 - no worker (it could not start): drawn here
        handle.update(_bundle(figure, arguments), raw=True)
        return True
    _pending.append((future, handle, figure, arguments))
    return True


def place_drawn(wait: bool = False) -> None:
    """Put each figure the worker has drawn in its placeholder (all of them with ``wait``)."""
    global _pending
    left = []
    for future, handle, figure, arguments in _pending:
        if not wait and not future.done():
            left.append((future, handle, figure, arguments))
            continue
        try:
            bundle = future.result()
        except Exception:  # noqa: BLE001 - the worker failed: the figure is drawn here
            bundle = _bundle(figure, arguments)
        handle.update(bundle, raw=True)
    _pending = left


def wait_for_figures() -> None:
    """Wait for every figure drawn ahead and put it in place (the notebooks' last cell)."""
    place_drawn(wait=True)


def draw(pickled: bytes, rc: dict, arguments: dict) -> dict:
    """A pickled figure drawn as the kernel's PNG formatter draws it (in the worker)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rcParams deprecated since they were set warn on setting
        with matplotlib.rc_context(rc):
            figure = pickle.loads(pickled)  # a figure pyplot held is held by the worker's pyplot
            try:
                return _bundle(figure, arguments)
            finally:
                plt.close(figure)


def _bundle(figure, arguments: dict) -> dict:
    """The figure's display data: its text and, drawn as ``print_figure(**arguments)``, its PNG."""
    from IPython.core.pylabtools import print_figure

    png = print_figure(figure, **arguments)
    return {"text/plain": repr(figure), **({"image/png": png} if png is not None else {})}


def _png_arguments(figure) -> dict | None:
    """The arguments of the kernel's PNG formatter for figures, when PNG is the only image format
    a figure is displayed in (the inline backend's default); else None."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    printers = {}
    for mime, formatter in shell.display_formatter.formatters.items():
        if mime == "text/plain" or not formatter.enabled:
            continue
        try:
            printers[mime] = formatter.lookup(figure)
        except KeyError:
            continue
    png = printers.pop("image/png", None)
    if printers or not isinstance(png, functools.partial) or png.func is not print_figure:
        return None
    return dict(png.keywords)


def start_worker() -> None:
    """Start the worker and its imports (matplotlib, IPython's figure printer) now, in a report
    kernel, so that the first figure does not wait for them: the report's setup calls this while
    the store opens, when the machine has a core to spare. Nothing happens anywhere else."""
    if not enabled():
        return
    try:
        _pool().submit(_import_drawing)
    except Exception:  # noqa: BLE001 - no worker: each figure is drawn in the kernel instead
        return


def _import_drawing() -> None:
    """What :func:`draw` imports, imported ahead in the worker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    from IPython.core import pylabtools  # noqa: F401


def _pool():
    global _worker
    if _worker is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_ignore_interrupts)
    return _worker


def _ignore_interrupts() -> None:
    """The worker ignores the interrupt a kernel's process group gets when it is shut down (it
    ends with the kernel)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
