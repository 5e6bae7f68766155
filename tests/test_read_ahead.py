"""Reading ahead (:func:`aiscale.report.prefetch.open_reading_ahead`) builds the
store's kept calls and loop table in a background thread while the facts roll up: each is built
once even when a section asks for it meanwhile, and every section reads what it reads without
reading ahead."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from kept_files import kept_files

import aiscale
from aiscale.report import loop_table as loop_table_module
from aiscale.report import sections_loops, sections_spend
from aiscale.report.context import Context, memoised, open_context
from aiscale.report.loop_table import loops_of
from aiscale.report.prefetch import THREAD, open_reading_ahead
from aiscale.report.shared_calls import calls_of
from aiscale.sim.simulate import simulate_to
from aiscale.store import calls_read

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLAUDE = REAL / "claude-code-sessions" / "packmind-context-evaluator-entire"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    simulate_to(folder / "sim", 300, seed=8, format="parquet")
    return [folder / "sim", CLAUDE]


def _fresh_store(sources, folder: Path):
    return aiscale.load(sources, store=folder / "s.store")


def _counting(monkeypatch, module, name: str) -> list[str]:
    """Wrap the real function: each call is recorded with the thread that made it."""
    calls: list[str] = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_the_kept_tables_are_built_once_in_the_background_even_when_asked_for_at_once(
        sources, tmp_path, monkeypatch):
    store = _fresh_store(sources, tmp_path)
    built_calls = _counting(monkeypatch, calls_read, "read_calls")
    built_loops = _counting(monkeypatch, loop_table_module, "compute_loop_table")
    ctx = open_reading_ahead(store.root)
    calls, loops = calls_of(ctx, prices=ctx.prices), loops_of(ctx)  # asked for at once, from this thread
    assert built_calls == [THREAD] and built_loops == [THREAD]
    assert len(kept_files(store, "calls")) == 1 and len(kept_files(store, "loops")) == 1
    shared = calls_of(ctx, prices=ctx.prices, parts=True)  # the one frame the sections share
    assert calls_of(ctx, prices=ctx.prices, parts=True) is shared and loops_of(ctx) is loops
    pd.testing.assert_frame_equal(calls, shared[calls.columns])


def test_every_section_reads_what_it_reads_without_reading_ahead(sources, tmp_path):
    ahead = open_reading_ahead(_fresh_store(sources, tmp_path / "a").root)
    plain = open_context(_fresh_store(sources, tmp_path / "b").root)
    pd.testing.assert_frame_equal(calls_of(ahead, prices=None), calls_of(plain, prices=None), check_exact=True)
    pd.testing.assert_frame_equal(loops_of(ahead), loops_of(plain), check_exact=True)
    for section in (sections_spend.spend_over_time, sections_spend.cache, sections_loops.pathologies,
                    sections_loops.budget):
        a, b = section(ahead), section(plain)
        assert a.finding == b.finding
        assert a.data == b.data


def test_a_read_that_fails_ahead_is_read_again_by_the_section_that_needs_it(
        sources, tmp_path, monkeypatch):
    store = _fresh_store(sources, tmp_path)
    real = calls_read.read_calls
    failed = threading.Event()

    def fails_in_the_background(*args, **kwargs):
        if threading.current_thread().name == THREAD:
            failed.set()
            raise OSError("disk unplugged")
        return real(*args, **kwargs)

    monkeypatch.setattr(calls_read, "read_calls", fails_in_the_background)
    ctx = open_reading_ahead(store.root)
    calls = calls_of(ctx, prices=ctx.prices)
    assert failed.is_set()
    assert len(calls) == len(calls_of(open_context(_fresh_store(sources, tmp_path / "b").root), prices=None))


def test_a_key_asked_for_by_two_threads_at_once_is_computed_once():
    ctx = Context(facts=pd.DataFrame({"trace_id": ["a"]}), spans=None, store=None)
    started, release, computed = threading.Event(), threading.Event(), []

    def slow() -> int:
        computed.append(threading.current_thread().name)
        started.set()
        release.wait(5)
        return 7

    other = threading.Thread(target=lambda: memoised(ctx, "k", slow), name="other")
    other.start()
    started.wait(5)
    waiting = threading.Thread(target=lambda: computed.append(memoised(ctx, "k", slow)), name="waiting")
    waiting.start()
    release.set()
    other.join(5)
    waiting.join(5)
    assert computed == ["other", 7]  # the second asker got the first one's value, computed once


def test_a_context_without_a_store_or_without_spans_reads_nothing_ahead(sources, tmp_path):
    from aiscale.report import prefetch

    ctx = open_context(_fresh_store(sources, tmp_path).root, with_spans=False)
    assert prefetch.start(ctx) is None
    assert kept_files(ctx.store, "calls") == [] and kept_files(ctx.store, "loops") == []


def test_a_window_is_read_ahead_for_the_days_its_sections_read(sources, tmp_path, monkeypatch):
    store = _fresh_store(sources, tmp_path)
    started = pd.to_datetime(store.facts()["started_at"], utc=True)
    since = started.sort_values().iloc[len(started) // 2].isoformat()
    built = _counting(monkeypatch, calls_read, "read_calls")
    ctx = open_reading_ahead(store.root, since=since)
    calls = calls_of(ctx, prices=ctx.prices)
    assert built == [THREAD]  # the read ahead was of the window's days: the section read no other
    assert 0 < len(ctx.facts) < len(started)
    assert set(calls["trace_id"]) <= set(ctx.facts["trace_id"])
    assert ctx.since == pd.Timestamp(since).to_pydatetime()
