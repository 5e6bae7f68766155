"""What a report run accepts before it runs: its parameters (plain data, declared, typed) and its
output names (never a file aiscale did not write)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import nbformat
import pytest

import aiscale
from aiscale.cli.main import main as cli_main
from aiscale.report.outputs import check_output, write_index, written_by_aiscale
from aiscale.report.parameters import check_parameters, parse_cli_parameters
from aiscale.report.render import available_notebooks, report

NOTEBOOKS = available_notebooks()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real (small) store: the tau-bench gpt-4o airline file."""
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    return aiscale.load([real / "tau-bench-historical" / "gpt-4o-airline.json"],
                        store=tmp_path_factory.mktemp("inputs") / "store")


# -- parameters ---------------------------------------------------------------------------------
def test_a_documented_date_parameter_is_accepted_as_text_not_a_yaml_date():
    given = parse_cli_parameters(["baseline_since=2025-06-02", "since=2025-06-09T00:00:00"])
    checked = check_parameters(NOTEBOOKS["cost-investigation"], given)
    assert checked == {"baseline_since": "2025-06-02", "since": "2025-06-09T00:00:00"}
    # the library takes dates too and passes them on as ISO text
    assert check_parameters(NOTEBOOKS["overview"], {"since": dt.date(2025, 6, 2)}) == {"since": "2025-06-02"}


def test_values_become_the_type_their_parameter_declares():
    given = parse_cli_parameters(["budget_usd=500", "horizon_days=14", "alpha=0.1", "variants=strong",
                                  "max_output_tokens=null"])
    checked = check_parameters(NOTEBOOKS["overview"], given)
    assert checked == {"budget_usd": 500.0, "horizon_days": 14, "alpha": 0.1, "variants": ["strong"],
                       "max_output_tokens": None}
    assert type(checked["horizon_days"]) is int and type(checked["budget_usd"]) is float
    a_b = check_parameters(NOTEBOOKS["compare"], parse_cli_parameters(["a=1.10", "b=no"]))
    assert a_b == {"a": "1.10", "b": "no"}  # variant names stay the text given


@pytest.mark.parametrize("item, message", [
    ("budget=500", r"The notebook 'overview' has no parameter `budget`; it accepts .*budget_usd.* "
                   r"Did you mean `budget_usd`\?"),
    ("budget_usd=lots", r"The parameter `budget_usd` accepts a number >= 0, or null, but 'lots' was passed"),
    ("budget_usd=-1", r"`budget_usd` accepts a number >= 0"),
    ("alpha=2", r"The parameter `alpha` accepts a number strictly between 0 and 1, but '2' was passed"),
    ("horizon_days=1.5", r"`horizon_days` accepts a whole number >= 1"),
    ("since=yesterday", r"The parameter `since` accepts a relative window \(\"7d\", .*'yesterday' was passed"),
    ("prices=no-such-sheet.yaml", r"`prices` accepts the path of an existing file.*no file at"),
    ("variants={a: b}", r"`variants` accepts a name or a list of names"),
    ("traffic_per_day=nan", r"`traffic_per_day` accepts a number >= 0"),
])
def test_bad_parameters_are_refused_naming_the_parameter_and_what_it_accepts(item, message):
    with pytest.raises(ValueError, match=message):
        check_parameters(NOTEBOOKS["overview"], parse_cli_parameters([item]))


EXPLOIT = "\"+str(__import__('os').system('touch {marker}'))+\""


@pytest.mark.parametrize("value", [
    "!!binary " + base64.b64encode(EXPLOIT.encode()).decode(),
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!str x", "!local x", "&anchor x", "[*alias]", "{a: !!binary eA==}",
])
def test_yaml_tags_anchors_and_aliases_are_refused(value, tmp_path):
    with pytest.raises(ValueError, match=r"-p a: YAML (tags|anchors)"):
        parse_cli_parameters(["a=" + value.replace("{marker}", str(tmp_path / "pwned"))])


def test_the_binary_exploit_cannot_run_code_through_the_cli(store, tmp_path, capsys):
    marker = tmp_path / "pwned"
    value = "!!binary " + base64.b64encode(EXPLOIT.format(marker=marker).encode()).decode()
    code = cli_main(["report", "--store", str(store.root), "--notebook", "compare", "-p", f"a={value}",
                     "-o", str(tmp_path / "out" / "r.html")])
    assert code == 2 and "YAML tags" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out").exists()  # refused before anything ran


def test_an_unknown_parameter_fails_before_a_kernel_starts(store, tmp_path, capsys):
    code = cli_main(["report", "--store", str(store.root), "-p", "budget=500", "-o", str(tmp_path / "o" / "r.html")])
    assert code == 2 and "Did you mean `budget_usd`?" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def echo_notebook(tmp_path_factory) -> Path:
    """A parameterized notebook that shows the repr of its parameter ``a``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("a = None\nb = None")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# echo"), parameters,
                      nbformat.v4.new_markdown_cell("## Value"), nbformat.v4.new_code_cell("print(repr(a))")]
    path = tmp_path_factory.mktemp("echo") / "echo.ipynb"
    nbformat.write(notebook, path)
    return path


def test_hostile_text_reaches_the_notebook_as_the_same_text_and_runs_nothing(store, echo_notebook, tmp_path):
    marker = tmp_path / "pwned"
    hostile = (EXPLOIT.format(marker=marker) + "\n'''\"\"\"\\ \x00?" + "'); __import__('os').system('touch "
               + str(marker) + "'); ('")
    user_page = tmp_path / "out" / "index.html"  # a page of the user's own, where reports go
    user_page.parent.mkdir()
    user_page.write_text("<html>my site</html>")
    out = report(store, notebook=echo_notebook, out=tmp_path / "out" / "echo.html",
                 parameters={"a": hostile})
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert printed.strip() == repr(hostile)
    assert not marker.exists()
    assert executed.metadata["aiscale"]["notebook"] == "echo" and written_by_aiscale(out)
    assert user_page.read_text() == "<html>my site</html>"  # not replaced by aiscale's index
    # rendering again replaces aiscale's own files
    assert report(store, notebook=echo_notebook, out=out, parameters={"a": "again"}) == out


def test_the_store_is_not_a_parameter(store, tmp_path):
    with pytest.raises(ValueError, match="`store` argument"):
        report(store, out=tmp_path / "r.html", parameters={"store": "/elsewhere"})


# -- output names -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, message", [
    ("r.ipynb", r"must end in \.html, but '.*r\.ipynb' was passed"),
    ("report", r"must end in \.html"),
    ("index.html", r"index\.html is the list of reports aiscale keeps"),
    ("INDEX.HTML", r"index\.html is the list of reports aiscale keeps"),
])
def test_output_names_that_collide_with_aiscale_files_are_refused(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        check_output(tmp_path / name)


def test_files_aiscale_did_not_write_are_never_replaced(tmp_path):
    (tmp_path / "mine.html").write_text("<html>my page</html>")
    with pytest.raises(ValueError, match=r"mine\.html: exists and was not written by aiscale"):
        check_output(tmp_path / "mine.html")
    (tmp_path / "notes.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with pytest.raises(ValueError, match=r"notes\.ipynb: exists and was not written by aiscale"):
        check_output(tmp_path / "notes.html")  # its executed notebook would replace notes.ipynb
    (tmp_path / "old.html").write_text('<head><meta content="aiscale" name="generator"/></head>')
    assert check_output(tmp_path / "old.html") == tmp_path / "old.html"


def test_cli_refuses_index_and_notebook_names_before_running(store, tmp_path, capsys):
    for name in ("index.html", "r.ipynb"):
        assert cli_main(["report", "--store", str(store.root), "-o", str(tmp_path / "o" / name)]) == 2
    assert "index.html is the list" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_index_is_aiscale_s_own_and_lists_only_its_reports(tmp_path):
    (tmp_path / "report.html").write_text('<meta content="aiscale" name="generator"/>')
    (tmp_path / "about.html").write_text("<html>not a report</html>")
    index = write_index(tmp_path)
    page = index.read_text()
    assert written_by_aiscale(index) and 'href="report.html"' in page and "about.html" not in page
    index.write_text("<html>the user's own index</html>")
    assert write_index(tmp_path) is None
    assert index.read_text() == "<html>the user's own index</html>"


def test_since_given_twice_with_different_values_is_refused_not_silently_overridden(tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    code = cli_main(["report", "--store", str(store), "--since", "7d", "-p", "since=2025-06-02",
                     "-o", str(tmp_path / "r.html")])
    assert code == 2
    assert "--since 7d and -p since=2025-06-02 disagree" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
