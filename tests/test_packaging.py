"""The package as a user installs it: a wheel, in an environment without the source tree.

The wheel is built from a copy of the sources (offline, no build isolation), installed with
``pip install --no-deps --target`` into a folder, and run by a fresh virtualenv's Python with
only that folder and the test environment's dependencies on its path: the ``aiscale`` command
of the wheel loads a real file, exports facts, renders every report notebook, and the weekly
workflow's own commands run on the demo data.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

import aiscale
from aiscale.report.outputs import written_by_aiscale

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
NOTEBOOKS = ("compare", "cost-investigation", "overview")
pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds and installs the wheel once


def build_notebooks_module():
    spec = importlib.util.spec_from_file_location("build_notebooks", REPO / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_notebook_copies_are_what_the_one_script_writes():
    expected = build_notebooks_module().notebooks()
    assert sorted(expected) == [f"{n}.ipynb" for n in NOTEBOOKS]
    for folder in (REPO / "notebooks", REPO / "aiscale" / "report" / "notebooks"):
        assert sorted(p.name for p in folder.glob("*.ipynb")) == sorted(expected), folder
        for name, text in expected.items():
            assert (folder / name).read_text(encoding="utf-8") == text, (
                f"{folder / name} differs from scripts/build_notebooks.py: edit the cells there and run it")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO / "aiscale", source / "aiscale",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         str(source), "-w", str(tmp / "dist")], cwd=tmp)
    (built,) = (tmp / "dist").glob("aiscale-*.whl")
    return built


@dataclass
class Installed:
    python: Path
    script: Path
    env: dict
    target: Path

    def aiscale(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(self.python), str(self.script), *args], cwd=cwd, env=self.env, check=check)


def run(args, *, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("installed")
    target = tmp / "site"
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)], cwd=tmp)
    venv.EnvBuilder(with_pip=False).create(tmp / "venv")  # no site-packages of its own to speak of
    dependencies = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp)), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([str(target), *dependencies]),
           # nbconvert's base templates are data files of the dependencies' environment
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"), "MPLBACKEND": "Agg"}
    python = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    return Installed(python=python, script=target / "bin" / "aiscale", env=env, target=target)


def test_the_wheel_carries_what_reports_need_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for notebook in NOTEBOOKS:
        assert f"aiscale/report/notebooks/{notebook}.ipynb" in names
    assert {"aiscale/report/templates/aiscale_report/index.html.j2",
            "aiscale/report/templates/aiscale_report/conf.json", "aiscale/py.typed"} <= names
    assert not any(n.startswith(("tests/", "notebooks/", "data/")) for n in names)


def test_the_wheel_metadata_passes_twine_check(wheel):
    result = run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)], cwd=wheel.parent, check=False)
    assert result.returncode == 0 and "PASSED" in result.stdout, result.stdout + result.stderr


def test_installed_aiscale_is_the_wheel_and_prints_its_version(installed, tmp_path):
    where = run([str(installed.python), "-c", "import aiscale; print(aiscale.__file__)"],
                cwd=tmp_path, env=installed.env).stdout.strip()
    assert Path(where).is_relative_to(installed.target), where
    assert not Path(where).is_relative_to(REPO)
    assert installed.aiscale("--version", cwd=tmp_path).stdout.strip() == f"aiscale {aiscale.__version__}"


def test_installed_aiscale_loads_a_real_file_and_exports_facts(installed, tmp_path):
    # tau-bench's gpt-4o airline file: 50 tasks x 4 trials, 84 successes (its SOURCE.md)
    loaded = installed.aiscale("load", str(REAL / "tau-bench-historical" / "gpt-4o-airline.json"),
                               "--store", "s.store", cwd=tmp_path)
    assert "200" in loaded.stdout
    installed.aiscale("facts", "--store", "s.store", "-o", "facts.csv", cwd=tmp_path)
    facts = pd.read_csv(tmp_path / "facts.csv")
    assert len(facts) == 200 and facts["task_id"].nunique() == 50 and int(facts["success"].sum()) == 84


def workflow_steps() -> tuple[dict, list[str]]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "weekly-report.yml").read_text())
    job = workflow["jobs"]["report"]
    return job["env"], [step["run"] for step in job["steps"] if "run" in step]


def test_the_weekly_workflow_installs_the_way_the_readme_says():
    _, commands = workflow_steps()
    assert commands[0] == "python -m pip install ."
    assert "    python -m pip install .            #" in (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def weekly(installed, tmp_path_factory):
    """Run the weekly workflow's commands (after its install step) on the demo data."""
    folder = tmp_path_factory.mktemp("weekly")
    env_names, commands = workflow_steps()
    assert set(env_names) == {"TRACE_EXPORTS", "REPORT_SINCE"}
    bin_dir = folder / "bin"  # `aiscale` on PATH is the wheel's, run by the fresh Python
    bin_dir.mkdir()
    (bin_dir / "aiscale").write_text(f'#!/bin/sh\nexec "{installed.python}" "{installed.script}" "$@"\n')
    (bin_dir / "aiscale").chmod(0o755)
    env = {**installed.env, "PATH": f"{bin_dir}{os.pathsep}{installed.env['PATH']}",
           "TRACE_EXPORTS": str(REPO / "data" / "demo"), "REPORT_SINCE": "2025-06-09"}
    results = [run(["bash", "-e", "-c", command], cwd=folder, env=env, check=False) for command in commands[1:]]
    return folder, commands[1:], results


def assert_progress_and_quiet_kernel(result: subprocess.CompletedProcess, notebook: str) -> None:
    """One line per section, in the notebook's order, each with its time; nothing from the kernel."""
    assert "TCP without encryption" not in result.stderr + result.stdout
    assert "[IPKernelApp]" not in result.stderr  # the kernel says nothing (it is shut down, not orphaned)
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"rendering {notebook} on ")
    cells = nbformat.read(REPO / "notebooks" / f"{notebook}.ipynb", as_version=4).cells
    headings = [c.source[3:].strip() for c in cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    timed = [line for line in lines[1:] if re.search(r"\d+\.\d s$", line)]
    sections = [re.sub(r"\s+\d+\.\d s$", "", line).strip() for line in timed]
    assert sections == ["parameters", "parameters given", "setup", *headings, "figures (the last ones drawn)",
                        "HTML export"]


def test_the_weekly_workflow_commands_run_on_the_demo(weekly):
    folder, commands, results = weekly
    for command, result in zip(commands, results, strict=True):
        allowed = (0, 3) if command.startswith("aiscale check") else (0,)  # 3: a rule fired
        assert result.returncode in allowed, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert (folder / "reports" / "check.json").is_file()
    assert results[0].stdout.strip() == f"aiscale {aiscale.__version__}"
    (page,) = (folder / "reports").glob("weekly-*.html")
    text = page.read_text()
    assert written_by_aiscale(page) and ">Spend<" in text and ">Drift<" in text
    assert "No traces in this window" not in text
    assert 'href="' + page.name + '"' in (folder / "reports" / "index.html").read_text()
    (report_step,) = [r for c, r in zip(commands, results, strict=True) if c.startswith("aiscale report")]
    assert_progress_and_quiet_kernel(report_step, "overview")


@pytest.mark.parametrize("notebook", ["compare", "cost-investigation"])  # overview: the weekly run
def test_installed_aiscale_renders_the_other_notebooks(weekly, installed, notebook):
    folder = weekly[0]
    result = installed.aiscale("report", "--store", "traces.store", "--notebook", notebook,
                               "-p", "since=2025-06-12", "-o", f"out/{notebook}.html", cwd=folder)
    page = folder / "out" / f"{notebook}.html"
    assert written_by_aiscale(page)
    assert_progress_and_quiet_kernel(result, notebook)
    for cell in nbformat.read(REPO / "notebooks" / f"{notebook}.ipynb", as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            assert f">{cell.source[3:].strip()}<" in page.read_text()
