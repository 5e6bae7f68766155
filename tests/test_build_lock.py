"""A store's kept tables (facts, priced calls, loop table) are built once when several threads or
processes ask for them at the same time: the others wait on the store's build lock and read the
file the first one kept, with the same values as building it themselves."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from kept_files import kept_files

import aiscale
from aiscale.report import loop_table
from aiscale.store import build_lock, calls_read, facts_file

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLAUDE = REAL / "claude-code-sessions" / "packmind-context-evaluator-entire"  # LLM and tool calls

# A second process that rolls the facts up slowly: it says when it is inside the roll-up, then takes a second.
SLOW_ROLLUP = """
import sys, time
from pathlib import Path
import aiscale
from aiscale.store import facts_file
rollup = facts_file.rollup_batches
def slow(*args, **kwargs):
    Path(sys.argv[2]).touch()
    time.sleep(1.0)
    yield from rollup(*args, **kwargs)
facts_file.rollup_batches = slow
aiscale.TraceStore(sys.argv[1]).facts()
"""


@pytest.fixture
def store(tmp_path):
    return aiscale.load([CLAUDE], store=tmp_path / "s.store")


def _counted(monkeypatch, module, name: str) -> list[int]:
    """Count the calls of ``module.name`` (the function kept as it is)."""
    calls, original = [], getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def _run_together(store, read, n: int = 3) -> list:
    """``read(store)`` in ``n`` threads started together, each on its own TraceStore object (no
    shared memo, no shared thread lock: only the store's build lock keeps them apart)."""
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            opened = aiscale.TraceStore(store.root)
            barrier.wait()
            results[i] = read(opened)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_facts_asked_for_at_once_are_rolled_up_once_and_equal(store, monkeypatch):
    rollups = _counted(monkeypatch, facts_file, "rollup_batches")
    results = _run_together(store, lambda opened: opened.facts())
    assert len(rollups) == 1
    assert len(kept_files(store, "facts")) == 1
    for other in results[1:]:
        pd.testing.assert_frame_equal(other, results[0], check_exact=True)
    for path in kept_files(store, "facts"):
        path.unlink()
    pd.testing.assert_frame_equal(store.facts(), results[0], check_exact=True)  # as rolled up alone
    assert len(rollups) == 2


def test_calls_asked_for_at_once_are_built_once_and_equal(store, monkeypatch):
    builds = _counted(monkeypatch, calls_read, "read_calls")
    results = _run_together(store, lambda opened: opened.calls())
    assert len(builds) == 1
    assert all(table.equals(results[0]) for table in results[1:])
    assert results[0].num_rows > 0


def test_loop_tables_asked_for_at_once_are_computed_once_and_equal(store, monkeypatch):
    computed = _counted(monkeypatch, loop_table, "compute_loop_table")
    results = _run_together(store, lambda opened: loop_table.loop_table(opened))
    assert len(computed) == 1
    assert all(isinstance(table, pa.Table) and table.equals(results[0]) for table in results[1:])
    assert results[0].num_rows > 0


def test_a_process_waits_for_another_processes_roll_up_and_reads_its_file(store, tmp_path, monkeypatch):
    inside = tmp_path / "inside"
    other = subprocess.Popen([sys.executable, "-c", SLOW_ROLLUP, str(store.root), str(inside)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not inside.exists():
            assert other.poll() is None, other.communicate()
            assert time.monotonic() < deadline, "the other process never started rolling up"
            time.sleep(0.02)
        rollups = _counted(monkeypatch, facts_file, "rollup_batches")
        facts = store.facts()  # the other process holds the lock: this waits for its file
        assert other.wait(timeout=120) == 0, other.communicate()
    finally:
        other.kill()
    assert rollups == []
    assert len(kept_files(store, "facts")) == 1
    for path in kept_files(store, "facts"):
        path.unlink()
    pd.testing.assert_frame_equal(store.facts(), facts, check_exact=True)
    assert len(rollups) == 1


def test_the_lock_is_held_until_released_and_a_store_that_keeps_nothing_takes_none(tmp_path):
    waited = threading.Event()

    def second() -> None:
        with build_lock.building(tmp_path, "calls"):
            waited.set()

    with build_lock.building(tmp_path, "calls"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not waited.wait(0.3)  # blocked while the first holds it
        with build_lock.building(tmp_path, "loops"):  # another kind is another lock
            pass
    thread.join(timeout=10)
    assert waited.is_set()
    unwritable = tmp_path / "unwritable"
    unwritable.mkdir()
    (unwritable / "cache").write_text("")  # a file where the cache folder goes: no lock file can be made
    with build_lock.building(unwritable, "facts"):  # nothing can be kept there: nothing to wait for
        assert (unwritable / "cache").is_file()


def test_a_file_system_without_locks_builds_as_if_alone(store, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(build_lock.fcntl, "flock", no_locks)
    facts = store.facts()
    assert len(facts) > 0 and len(kept_files(store, "facts")) == 1
