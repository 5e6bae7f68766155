"""``aiscale load`` of OTLP JSON starts lean: aiscale's own load path imports neither pandas nor
tqdm (no progress bar is drawn when stderr is no terminal), and what it writes is unchanged: the
summary, and the quarantine file's fields, which pandas wrote before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import aiscale
from aiscale.cli.exits import EXIT_PARTIAL
from aiscale.loaders.base import Quarantined
from aiscale.store.quarantine_file import write_quarantine

TREE = str(Path(aiscale.__file__).resolve().parents[1])
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "otlp-traces.jsonl"
IMPORTS = """
import sys
import aiscale.cli.main, aiscale.cli.store, aiscale.loaders, aiscale.store.loading, aiscale.store.trace_store
aiscale.loaders._registry()  # every loader module, as detecting a file's format imports them
print("pandas" in sys.modules, "tqdm" in sys.modules)
"""
LOAD = """
import sys
from aiscale.cli.main import main
code = main(["load", sys.argv[1], "--store", sys.argv[2]])
print("exit", code, "tqdm" in sys.modules)
"""


def _run(code: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": TREE, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "AISCALE_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          check=True)


def test_the_load_path_of_aiscale_imports_neither_pandas_nor_tqdm(tmp_path):
    assert _run(IMPORTS, tmp_path=tmp_path).stdout.split() == ["False", "False"]


def test_a_cli_load_without_a_terminal_draws_no_bar_and_quarantines_a_bad_line(tmp_path):
    lines = DEMO.read_text().splitlines(keepends=True)
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(lines[:2]) + '{"resourceSpans": [{"scopeSpans": \n' + "".join(lines[2:]))
    done = _run(LOAD, str(path), str(tmp_path / "store"), tmp_path=tmp_path)
    assert done.stdout.split("\n")[-2] == f"exit {EXIT_PARTIAL} False"  # partial (a row quarantined); tqdm never imported
    assert "loading" not in done.stderr  # no progress bar
    (quarantine,) = (tmp_path / "store" / "quarantine").glob("*.jsonl")
    (row,) = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert list(row) == ["source_file", "source_row", "reason", "excerpt", "trace_id", "lost_llm_call"]
    assert (row["source_file"], row["source_row"]) == (str(path), 3)
    assert row["reason"].startswith("invalid JSON") and row["excerpt"].startswith('{"resourceSpans"')
    library = aiscale.load([path], store=tmp_path / "library").last_load  # the same rows, in-process
    assert str(library) in done.stdout and library.rows_quarantined == 1
    assert f"{library.contents.traces:,} traces with spans" in done.stdout


def test_quarantine_lines_read_back_as_the_frame_pandas_wrote(tmp_path):
    rows = [Quarantined("a/b.jsonl", 3, "invalid JSON: Expecting value", "{é / \"x\"", "t1", True),
            Quarantined("a/b.jsonl", None, "file is not valid UTF-8"),
            Quarantined("c.jsonl", 12, "span has end_time before start_time", "span s 'chat'", None, False)]
    for kept in (rows, rows[::2]):  # with a row of unknown line (pandas wrote floats then) and without
        pd.DataFrame([vars(q) for q in kept]).to_json(tmp_path / "pandas.jsonl", orient="records", lines=True)
        write_quarantine(kept, tmp_path / "lean.jsonl")
        pd.testing.assert_frame_equal(pd.read_json(tmp_path / "lean.jsonl", lines=True, dtype=False),
                                      pd.read_json(tmp_path / "pandas.jsonl", lines=True, dtype=False))
