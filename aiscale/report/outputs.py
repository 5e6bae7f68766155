"""Where a report goes: output names checked before rendering, files aiscale wrote marked.

aiscale never overwrites a file it did not write. Its reports and its ``index.html`` carry
``<meta name="generator" content="aiscale ...">``; its executed notebooks carry ``aiscale``
in their metadata. An output name that collides with aiscale's own files (``index.html``,
or a name not ending in ``.html`` whose notebook would be written beside it) is refused
before anything runs; an existing file of the same name that aiscale did not write is refused
too; an ``index.html`` that is not aiscale's is left alone (the report is still written).

Examples
--------
>>> safe_filename("weekly report: <b>.html")
'weekly_report___b_.html'
>>> GENERATOR in index_page([])
True
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from pathlib import Path

GENERATOR = '<meta name="generator" content="aiscale">'
# nbconvert rewrites the tag (attributes reordered, self-closed): match either order
_MARKED = re.compile(r'<meta\s+(?:name="generator"\s+content="aiscale"|content="aiscale"\s+name="generator")')
INDEX = "index.html"


def safe_filename(name: str) -> str:
    """Return ``name`` with anything but letters, digits, dot, dash and underscore replaced."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "report.html"


def written_by_aiscale(path: Path) -> bool:
    """True when ``path`` is a report, index or executed notebook that aiscale wrote."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(2**20)
    except OSError:
        return False
    if path.suffix == ".ipynb":
        try:
            metadata = json.loads(text).get("metadata", {})
        except (ValueError, AttributeError):
            return False
        # reports rendered before the marker: papermill ran them with a `store` parameter
        return "aiscale" in metadata or "store" in metadata.get("papermill", {}).get("parameters", {})
    # the marker, or a report rendered before it (its findings carry aiscale's class)
    return bool(_MARKED.search(text)) or 'class="aiscale-finding"' in text or "<title>aiscale reports</title>" in text


def check_output(out: str | Path) -> Path:
    """Return the sanitised report path, or raise a ValueError if writing it would clobber a file.

    The report is ``out`` (a ``.html`` name, sanitised), its executed notebook goes beside it
    with ``.ipynb``; neither may replace a file aiscale did not write, and the name may not be
    the folder's ``index.html``.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"The report file must end in .html, but {str(out)!r} was passed "
                         f"(the executed notebook is written beside it as .ipynb).")
    out = out.with_name(safe_filename(out.name))
    if out.name.lower() == INDEX:
        raise ValueError(f"{out}: index.html is the list of reports aiscale keeps in the output "
                         f"folder; choose another name, e.g. {out.with_name('report.html')}.")
    for path in (out, out.with_suffix(".ipynb")):
        if path.is_dir():
            raise ValueError(f"{path}: is a folder; give the report a file name.")
        if path.exists() and not written_by_aiscale(path):
            raise ValueError(f"{path}: exists and was not written by aiscale; it is left alone. "
                             f"Choose another name or move that file.")
    return out


def index_page(reports: list[Path]) -> str:
    """The HTML of the reports' index (newest first), marked as aiscale's."""
    rows = "".join(
        f'<tr><td><a href="{html.escape(p.name, quote=True)}">{html.escape(p.stem)}</a></td>'
        f"<td>{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(p.stat().st_mtime))}</td>"
        f"<td>{p.stat().st_size / 1024:.0f} KB</td></tr>"
        for p in reports)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">' + GENERATOR +
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            "<title>aiscale reports</title></head><body><h1>aiscale reports</h1>"
            f"<table><tr><th>report</th><th>rendered</th><th>size</th></tr>{rows}</table></body></html>")


def write_index(folder: str | Path) -> Path | None:
    """Write ``index.html`` listing the reports in ``folder``, newest first.

    Returns None, writing nothing, when an ``index.html`` is there that aiscale did not write.
    """
    folder = Path(folder)
    index = folder / INDEX
    if index.exists() and not written_by_aiscale(index):
        return None
    reports = sorted((p for p in folder.glob("*.html") if p.name.lower() != INDEX and written_by_aiscale(p)),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    tmp = folder / f".{INDEX}.{os.getpid()}.tmp"
    tmp.write_text(index_page(reports), encoding="utf-8")
    os.replace(tmp, index)
    return index
