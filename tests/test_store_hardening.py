"""The store under careless or hostile use: concurrent loads, colliding ids, tampered manifests,
stores inside loaded folders, unsafe output, terminal escapes, odd paths, killed parents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiscale
from aiscale.sim.simulate import simulate_to
from aiscale.store.lock import StoreBusyError, load_lock
from aiscale.store.trace_store import TraceStore

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MINI = REAL / "mini-swe-agent-gemini3-verified"
ENV = {**os.environ, "PYTHONPATH": str(Path(aiscale.__file__).resolve().parents[1])}


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aiscale.cli", *map(str, args)], capture_output=True,
                          text=True, env=ENV, **kwargs)


@pytest.fixture(scope="module")
def otlp_files(tmp_path_factory) -> list[Path]:
    """Six small simulated OTLP files with disjoint traces."""
    folder = tmp_path_factory.mktemp("otlp")
    files = []
    for seed in range(6):
        out = folder / f"sim{seed}"
        simulate_to(out, 12, seed=100 + seed, format="otlp")
        files += sorted(p for p in out.rglob("*.jsonl"))
    return files


def test_concurrent_loads_into_one_store_lose_nothing(otlp_files, tmp_path):
    store = tmp_path / "shared.store"
    procs = [subprocess.Popen([sys.executable, "-m", "aiscale.cli", "load", str(f), "--store", str(store)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for f in otlp_files]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * len(otlp_files)
    manifest = json.loads((store / "manifest.json").read_text())
    assert sorted(e["path"] for e in manifest["files"].values()) == sorted(map(str, otlp_files))
    sequential = aiscale.load(otlp_files, store=tmp_path / "sequential.store")
    assert TraceStore(store).facts().equals(sequential.facts())
    assert not list(store.glob(".load-*"))


def test_a_second_load_waits_or_fails_clearly_with_no_wait(otlp_files, tmp_path):
    store = TraceStore(tmp_path / "s")
    with load_lock(store.root):
        busy = cli("load", otlp_files[0], "--store", store.root, "--no-wait")
        with pytest.raises(StoreBusyError, match="another load into this store is running"):
            store.load(otlp_files[0], wait=False)
    assert busy.returncode == 2
    assert "another load into this store is running" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1
    messages = []
    store.load(otlp_files[0], on_wait=messages.append)  # free again: no wait, no message
    assert messages == [] and len(store.manifest()["files"]) == 1


def test_a_load_removes_only_staging_of_dead_loads(otlp_files, tmp_path):
    store = TraceStore(tmp_path / "s")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = store.root / f".load-{live.pid}-abcdef0123456789-12345678"
        dead = store.root / ".load-999999999-abcdef0123456789-12345678"
        old = store.root / ".load-abcdef0123456789-12345678"  # before staging names held a pid
        for folder in (mine, dead, old):
            folder.mkdir()
        store.load(otlp_files[0])
        assert mine.exists() and not dead.exists() and not old.exists()
    finally:
        live.kill()


def _mini_run(root: Path, instance: str, cost: float, calls: int) -> Path:
    """A minimal mini-swe-agent trajectory in ``root/run/trajs``."""
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    for i in range(calls):
        messages.append({"role": "assistant", "content": f"step {i} ```bash\necho {i}\n```",
                         "extra": {"response": {"usage": {"prompt_tokens": 10, "completion_tokens": 5}}}})
        messages.append({"role": "user", "content": "ok"})
    document = {"trajectory_format": "mini-swe-agent-1", "instance_id": instance, "messages": messages,
                "info": {"exit_status": "Submitted", "mini_version": "1.0",
                         "model_stats": {"instance_cost": cost, "api_calls": calls},
                         "config": {"model": {"model_name": "gpt-4o-mini"}, "agent": {"step_limit": 50}}}}
    path = root / "run" / "trajs" / instance / f"{instance}.traj.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    return path


def test_two_runs_in_folders_of_the_same_name_stay_two_traces(tmp_path):
    _mini_run(tmp_path / "a", "x__y-1", 0.74, 3)
    _mini_run(tmp_path / "b", "x__y-1", 0.99, 4)
    store = aiscale.load([tmp_path / "a", tmp_path / "b"], store=tmp_path / "s")
    facts = store.facts()
    assert len(facts) == 2 and facts["trace_id"].is_unique
    assert sorted(facts["n_llm_calls"].tolist()) == [3, 4]  # not one spliced trace of 7 calls


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(["run", "r", "x", "same"]), min_size=2, max_size=4),
       instance=st.sampled_from(["a__b-1", "django__django-1"]))
def test_property_loader_made_trace_ids_are_unique_across_files(tmp_path_factory, names, instance):
    root = tmp_path_factory.mktemp("runs")
    for number, name in enumerate(names):
        path = _mini_run(root / f"p{number}", instance, 0.1 * (number + 1), number + 1)
        if name != "run":  # the run folder takes the drawn name; several may share it
            path.parents[2].rename(path.parents[3] / name)
    ids = []
    for path in sorted(root.rglob("*.traj.json")):
        for chunk in aiscale.loaders.read_file(path)[1]:
            ids += chunk.traces["trace_id"].tolist() if chunk.traces is not None else []
    assert len(ids) == len(names) and len(set(ids)) == len(ids)


def test_sweagent_runs_of_the_same_name_keep_both_rows(tmp_path):
    source = next((REAL / "swe-agent-v0-traj").rglob("*.traj"))
    for parent in ("a", "b"):
        target = tmp_path / parent / source.parent.name / source.name
        target.parent.mkdir(parents=True)
        document = json.loads(source.read_text())
        document["info"]["model_stats"]["api_calls"] = 1 if parent == "a" else 2
        target.write_text(json.dumps(document))
    facts = aiscale.load([tmp_path / "a", tmp_path / "b"], store=tmp_path / "s").facts()
    assert len(facts) == 2 and sorted(facts["n_llm_calls"].tolist()) == [1, 2]


def test_ids_claimed_by_two_sources_are_reported(otlp_files, tmp_path):
    store = aiscale.load(otlp_files[0], store=tmp_path / "s")
    trace_id = store.facts()["trace_id"].iloc[0]
    store.load(_canonical_copy(store, tmp_path, trace_id))
    assert trace_id in store.last_load.colliding_traces
    assert "claimed by different sources" in str(store.last_load)


def _canonical_copy(store: TraceStore, tmp_path: Path, trace_id: str) -> Path:
    """The spans of one trace written as a canonical Parquet file (another source, same id)."""
    spans = store.spans(trace_ids=[trace_id])
    path = tmp_path / "canonical.parquet"
    spans.assign(span_id=spans["span_id"] + "-copy").to_parquet(path)
    return path


def _damage(store: TraceStore, how: str) -> None:
    path = store.root / "manifest.json"
    manifest = json.loads(path.read_text())
    entry = next(iter(manifest["files"].values()))
    if how == "twice":
        entry["parts"]["spans"].append(entry["parts"]["spans"][0])
    elif how == "outside":
        entry["parts"]["spans"][0] = "../../outside.parquet"
    elif how == "shape":
        manifest["files"] = [entry]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("how, rule", [("twice", "twice"), ("outside", "not a relative path inside"),
                                       ("shape", "must be an object")])
def test_a_tampered_manifest_is_refused_naming_the_rule(otlp_files, tmp_path, how, rule):
    store = aiscale.load(otlp_files[0], store=tmp_path / "s")
    _damage(store, how)
    with pytest.raises(ValueError, match=rule):
        store.facts()
    result = cli("facts", "--store", store.root, "-o", tmp_path / "f.csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr and rule in result.stderr


def test_verify_finds_missing_and_changed_parts_and_says_what_to_reload(otlp_files, tmp_path):
    store = aiscale.load(otlp_files[:2], store=tmp_path / "s")
    assert cli("verify", "--store", store.root).returncode == 0
    entries = list(store.manifest()["files"].values())
    (store.root / "traces" / entries[1]["parts"]["traces"][0]).unlink()
    with pytest.raises(FileNotFoundError, match="aiscale verify"):
        store.facts()
    changed = store.root / "spans" / entries[0]["parts"]["spans"][0]
    changed.write_bytes(changed.read_bytes()[:-10] + b"0123456789")
    result = cli("verify", "--store", store.root)
    assert result.returncode == 1
    assert "checksum differs" in result.stdout and "is missing" in result.stdout
    assert entries[0]["path"] in result.stdout and entries[1]["path"] in result.stdout
    repaired = cli("verify", "--store", store.root, "--drop-damaged")
    assert repaired.returncode == 1 and "load them again" in repaired.stdout
    store.load(otlp_files[:2])
    assert cli("verify", "--store", store.root).returncode == 0
    assert store.facts().equals(aiscale.load(otlp_files[:2], store=tmp_path / "fresh").facts())


def test_a_store_inside_the_loaded_folder_is_not_loaded_again(otlp_files, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for number, f in enumerate(otlp_files[:2]):
        (folder / f"{number}-{f.name}").write_bytes(f.read_bytes())
    first = cli("load", folder, "--store", folder / "s.store")
    again = cli("load", folder, "--store", folder / "s.store")
    other = cli("load", folder, "--store", tmp_path / "t.store")
    assert (first.returncode, again.returncode, other.returncode) == (0, 0, 0)
    assert "(0 loaded, 2 already loaded" in again.stdout
    assert "files: 2 " in other.stdout  # s.store's parts are not exports


def test_formula_cells_are_neutralised_but_numbers_are_not():
    from aiscale.store.safe_output import neutralise_formulas

    frame = pd.DataFrame({"variant": ["=HYPERLINK(\"http://x\")", "@SUM(1)", "+1", "-x", "ok", None],
                          "cost": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    safe = neutralise_formulas(frame)
    assert safe["variant"].tolist()[:5] == ["'=HYPERLINK(\"http://x\")", "'@SUM(1)", "'+1", "'-x", "ok"]
    assert pd.isna(safe["variant"].iloc[5]) and safe["cost"].tolist() == frame["cost"].tolist()
    assert frame["variant"].iloc[0] == "=HYPERLINK(\"http://x\")"  # the input is not changed


def test_facts_csv_from_the_cli_is_safe_and_raw_on_request(tmp_path):
    spans = pd.DataFrame({
        "trace_id": ["t1"], "span_id": ["s1"], "kind": ["llm"], "name": ["=cmd|' /C calc'!A0"],
        "model": ["=HYPERLINK(\"http://evil\")"], "provider": ["openai"],
        "start_time": pd.to_datetime(["2025-01-01"], utc=True), "input_tokens": [10], "output_tokens": [5]})
    source = tmp_path / "spans.parquet"
    spans.to_parquet(source)
    assert cli("load", source, "--store", tmp_path / "s").returncode == 0
    assert cli("facts", "--store", tmp_path / "s", "-o", tmp_path / "safe.csv").returncode == 0
    assert cli("facts", "--store", tmp_path / "s", "-o", tmp_path / "raw.csv", "--raw-csv").returncode == 0
    safe = pd.read_csv(tmp_path / "safe.csv")["variant"].iloc[0]
    raw = pd.read_csv(tmp_path / "raw.csv")["variant"].iloc[0]
    assert safe == "'=HYPERLINK(\"http://evil\")" and raw == "=HYPERLINK(\"http://evil\")"


def test_terminal_escapes_in_model_names_are_not_printed(tmp_path):
    spans = pd.DataFrame({
        "trace_id": ["t1"], "span_id": ["s1"], "kind": ["llm"], "name": ["chat"],
        "model": ["gpt\x1b[2J\x1b]0;owned\x07-4o\x9b31m"], "provider": ["openai"],
        "start_time": pd.to_datetime(["2025-01-01"], utc=True), "input_tokens": [10], "output_tokens": [5]})
    source = tmp_path / "spans.parquet"
    spans.to_parquet(source)
    result = cli("load", source, "--store", tmp_path / "s")
    assert result.returncode == 0
    assert "gpt-4o" in result.stdout
    assert not any(ch in result.stdout + result.stderr for ch in ("\x1b", "\x07", "\x9b"))


@pytest.mark.parametrize("name", ["we'ird\"store", "back\\slash store", "new\nline store"])
def test_store_paths_with_quotes_backslashes_and_newlines_work(otlp_files, tmp_path, name):
    store = aiscale.load(otlp_files[0], store=tmp_path / name)
    store.load(otlp_files[1])
    assert len(store.facts()) == len(aiscale.load(otlp_files[:2], store=tmp_path / "plain").facts())
    assert cli("facts", "--store", store.root, "-o", tmp_path / "f.parquet").returncode == 0


def test_unwritable_targets_and_closed_pipes_are_one_line_errors(otlp_files, tmp_path):
    store = aiscale.load(otlp_files[0], store=tmp_path / "s")
    missing_dir = cli("facts", "--store", store.root, "-o", tmp_path / "no" / "such" / "f.csv")
    assert missing_dir.returncode == 2
    assert len(missing_dir.stderr.strip().splitlines()) == 1 and "Traceback" not in missing_dir.stderr
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere
            denied = cli("facts", "--store", store.root, "-o", readonly / "f.csv")
            assert denied.returncode == 2 and "Traceback" not in denied.stderr
    finally:
        readonly.chmod(0o700)
    proc = subprocess.Popen([sys.executable, "-m", "aiscale.cli", "formats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # the reader goes away before anything is written
    assert proc.wait(timeout=60) == 2
    assert "Traceback" not in proc.stderr.read().decode()


def test_an_interrupted_load_exits_2_and_leaves_no_staging(tmp_path):
    big = tmp_path / "big"
    simulate_to(big, 3000, seed=3, format="otlp")
    store = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "aiscale.cli", "load", str(big), "--store", str(store)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(store.glob(".load-*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the load won the race: nothing to check
        pytest.skip("the load finished before the interrupt")
    assert proc.returncode == 2 and "interrupted" in err and "Traceback" not in err
    assert not list(store.glob(".load-*"))


def test_workers_exit_when_the_loading_process_is_killed(otlp_files, tmp_path):
    psutil = pytest.importorskip("psutil")
    script = (f"import aiscale\nfrom aiscale.store import loading\nloading.PARALLEL_BYTES = 0\n"
              f"aiscale.load({[str(f) for f in otlp_files]!r}, store={str(tmp_path / 's')!r})\n")
    parent = subprocess.Popen([sys.executable, "-c", script], env=ENV)
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [c for c in psutil.Process(parent.pid).children(recursive=True)
                   if "multiprocessing" in " ".join(c.cmdline())]
        time.sleep(0.05)
    if not workers:
        parent.wait(timeout=120)
        pytest.skip("the load finished before its workers could be seen")
    parent.kill()
    parent.wait()
    gone, alive = psutil.wait_procs(workers, timeout=90)  # a loaded machine starts workers slowly
    assert alive == []


def test_trace_names_are_drawn_as_text_not_math(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    names = ["team$$a", "$\\frac{a}{b}$", "plain"]
    facts = pd.DataFrame({"variant": [n for n in names for _ in range(20)],
                          "task_id": [f"t{i}" for _ in names for i in range(20)],
                          "success": [i % 3 == 0 for _ in names for i in range(20)],
                          "cost_usd": [0.01 * (i + 1) for _ in names for i in range(20)]})
    for result in (aiscale.success_rate(facts), aiscale.frontier(facts, n_boot=50)):
        ax = result.plot()
        ax.figure.savefig(tmp_path / "f.png")  # `team$$a` would fail the drawing
        texts = [t for t in ax.figure.findobj(matplotlib.text.Text) if t.get_text() in names]
        assert texts and all(not t._parse_math for t in texts)
