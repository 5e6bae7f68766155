"""Safe output: trace strings are escaped, file names sanitised, nothing from a trace executed,
1 MB prompt strings load in bounded memory.
"""

from __future__ import annotations

import ast
import html
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import aiscale
from aiscale.report.outputs import safe_filename
from aiscale.store.load_summary import FileLoad, LoadSummary

PACKAGE = Path(aiscale.__file__).resolve().parent
HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><b>x</b>', "&amp;<i>"]


class Tags(HTMLParser):
    """Collects the tags and attributes an HTML page really has."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def live_elements(page: str) -> list:
    """Elements or raw text that only a trace string could have created."""
    parser = Tags()
    parser.feed(page)
    tags = [(t, a) for t, a in parser.tags if t == "script" or "onerror" in a
            or (t == "img" and not (a.get("src") or "").startswith("data:image/png;base64,"))]
    return tags + [h for h in HOSTILE if h in page] + (["<b>x"] if "<b>x</b>" in page else [])


# -- no eval / exec / pickle on anything ----------------------------------------------------
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("marshal", "loads"), ("marshal", "load"),
                   ("yaml", "unsafe_load"), ("yaml", "full_load"), ("dill", "loads"), ("shelve", "open")}


def unsafe_calls(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{name}:{node.lineno}: imports {m}" for m in modules
                      if m and m.split(".")[0] in ("pickle", "marshal", "dill", "shelve", "cloudpickle")]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            literal = func.id == "__import__" and all(isinstance(a, ast.Constant | ast.Name) for a in node.args)
            if not literal:
                found.append(f"{name}:{node.lineno}: {func.id}()")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            pair = (func.value.id, func.attr)
            if pair in FORBIDDEN_ATTRS:
                found.append(f"{name}:{node.lineno}: {pair[0]}.{pair[1]}()")
            if pair == ("yaml", "load") and not any(
                    k.arg == "Loader" and "Safe" in ast.unparse(k.value) for k in node.keywords):
                found.append(f"{name}:{node.lineno}: yaml.load without SafeLoader")
            if pair[1] in ("read_pickle", "to_pickle"):
                found.append(f"{name}:{node.lineno}: {pair[1]}()")
        found += [f"{name}:{node.lineno}: shell=True" for k in node.keywords
                  if k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True]
    return found


BETWEEN_OWN_PROCESSES = "aiscale/report/figures_ahead.py"
"""The one module that unpickles: a report kernel pickles its own figure and its worker process
unpickles it to draw it. The bytes cross a pipe between the two; none is read from a file or a
trace (checked below)."""


def test_fuzz_package_never_evals_execs_or_unpickles():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        found = unsafe_calls(path.read_text(), name)
        if name == BETWEEN_OWN_PROCESSES:
            found = [p for p in found if not p.endswith((": imports pickle", ": pickle.loads()"))]
        problems += found
    assert problems == []


def test_fuzz_the_figure_worker_unpickles_only_what_its_kernel_pickled():
    """In the figure worker's module, ``pickle.loads`` is called once, in ``draw`` (the worker's
    function), on its ``pickled`` argument, which ``draw_ahead`` made with ``pickle.dumps`` of the
    figure in hand; the module opens no file."""
    tree = ast.parse((PACKAGE.parent / BETWEEN_OWN_PROCESSES).read_text())
    loads = [(fn.name, ast.unparse(call)) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
             for call in ast.walk(fn) if isinstance(call, ast.Call) and ast.unparse(call.func) == "pickle.loads"]
    assert loads == [("draw", "pickle.loads(pickled)")]
    (ahead,) = [fn for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) and fn.name == "draw_ahead"]
    source = ast.unparse(ahead)
    assert "pickled = pickle.dumps(figure)" in source and "submit(draw, pickled," in source
    calls = {ast.unparse(c.func) for c in ast.walk(tree) if isinstance(c, ast.Call)}
    assert not {c for c in calls if c in ("open", "io.open") or c.endswith((".read_bytes", ".read_text", ".open"))}


def test_fuzz_the_ast_scan_catches_what_it_must():
    """The scanner itself: each forbidden form is caught, safe forms are not."""
    bad = ("eval(x)\nexec(y)\nimport pickle\npickle.loads(b)\nyaml.load(s)\n"
           "yaml.load(s, Loader=yaml.FullLoader)\npd.read_pickle(p)\nsubprocess.run(c, shell=True)\n")
    assert len(unsafe_calls(bad, "bad.py")) == 8
    good = "yaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\njson.loads(s)\n__import__('a.b')\n"
    assert unsafe_calls(good, "good.py") == []


# -- file names -----------------------------------------------------------------------------
@given(st.text(min_size=0, max_size=60))
def test_fuzz_report_file_names_are_sanitised(name):
    cleaned = safe_filename(name)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", cleaned)
    assert not cleaned.startswith(".") and "/" not in cleaned and ".." != cleaned


# -- escaping in notebook displays ----------------------------------------------------------
def hostile_facts() -> pd.DataFrame:
    rows = []
    for n in range(40):
        rows.append({"trace_id": f"t{n}", "task_id": HOSTILE[n % 4] + str(n % 10), "trial": n // 10,
                     "variant": HOSTILE[n % 2], "success": n % 3 != 0, "iterations": 1 + n % 7,
                     "cost_usd": 0.01 * (1 + n % 5), "score": float(n % 3 != 0)})
    return pd.DataFrame(rows)


def test_fuzz_result_html_escapes_trace_strings():
    from aiscale.analysis.loops import loop_budget
    from aiscale.analysis.reliability import rates as reliability

    facts = hostile_facts()
    results = [reliability.success_rate(facts, n_boot=50),
               loop_budget.loop_budget(facts, n_boot=20),
               LoadSummary([FileLoad(HOSTILE[1] + ".jsonl", "otlp", "loaded", rows_read=1, rows_loaded=1)])]
    for result in results:
        page = result._repr_html_()
        assert live_elements(page) == [], type(result).__name__
        if not isinstance(result, LoadSummary):
            assert "<code>&lt;" in page, type(result).__name__  # the repr itself is shown as text
        if not isinstance(result, loop_budget.LoopBudget):  # its table has no labels
            assert html.escape(HOSTILE[0]) in page or html.escape(HOSTILE[1]) in page, type(result).__name__


def test_fuzz_section_show_escapes_everything(capsys):
    """``sections.show`` output as the notebook gets it (IPython display -> text/html)."""
    from IPython.core.interactiveshell import InteractiveShell

    from aiscale.report.context import Section, show

    shell = InteractiveShell.instance()
    captured = []
    shell.display_pub.publish = lambda data, **kw: captured.append(data.get("text/html", ""))
    table = pd.DataFrame({"variant": HOSTILE, "cost": [1.0, 2.0, 3.0, 4.0]})
    show(Section(finding=f"cost of {HOSTILE[0]}", table=table, note=HOSTILE[2]))
    page = "".join(captured)
    assert page and live_elements(page) == []
    assert html.escape(HOSTILE[0]) in page and html.escape(HOSTILE[2]) in page


# -- 1 MB prompt strings -------------------------------------------------------------------
MEMORY_PROBE = """
import json, resource, sys
import aiscale
store = aiscale.load([sys.argv[1]], store=sys.argv[2])
facts = store.facts()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "rows": store.last_load.rows_loaded, "traces": len(facts),
                  "input": int(facts.input_tokens.sum())}))
"""


def write_big_prompts(path: Path, n_spans: int, prompt_bytes: int) -> None:
    """Phoenix spans whose input and output values are ``prompt_bytes`` characters each."""
    with open(path, "w") as handle:
        for n in range(n_spans):
            record = {"context.trace_id": f"t{n // 4}", "context.span_id": f"s{n}", "parent_id": None,
                      "name": "chat", "span_kind": "LLM", "start_time": "2025-01-01T00:00:00+00:00",
                      "end_time": "2025-01-01T00:00:01+00:00", "status_code": "OK",
                      "attributes.llm.model_name": "gpt-4o", "attributes.llm.token_count.prompt": 10,
                      "attributes.llm.token_count.completion": 1,
                      "attributes.input.value": "<script>" + "p" * prompt_bytes,
                      "attributes.output.value": "o" * prompt_bytes}
            handle.write(json.dumps(record) + "\n")


def peak_memory(path: Path, store: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(store)],
                            capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fuzz_megabyte_prompts_load_in_bounded_memory(tmp_path):
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_big_prompts(small, 40, 10)
    write_big_prompts(big, 40, 1 << 20)  # 40 spans x 2 MB of text = 80 MB
    base, heavy = peak_memory(small, tmp_path / "s1"), peak_memory(big, tmp_path / "s2")
    assert heavy["rows"] == base["rows"] == 40 and heavy["input"] == base["input"] == 400
    size = big.stat().st_size
    extra = heavy["peak"] - base["peak"]
    print(f"peak RSS {base['peak'] / 2**20:.0f} MB -> {heavy['peak'] / 2**20:.0f} MB for {size / 2**20:.0f} MB")
    assert extra < 6 * size, f"{extra / 2**20:.0f} MB over the baseline for a {size / 2**20:.0f} MB file"
