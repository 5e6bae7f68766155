"""``aiscale check``: fires on a simulated budget overrun and a planted success drop, stays quiet
on stationary simulated traffic at the stated false-alarm rate, exit codes 0 / 3 / 2."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

import aiscale
from aiscale.analysis.change.alerts import check_rules
from aiscale.cli.main import main
from aiscale.sim.laws import DEFAULT_VARIANTS
from aiscale.sim.simulate import write_parquet

START = datetime(2025, 6, 2, tzinfo=timezone.utc)
FAST, STRONG = DEFAULT_VARIANTS[0], replace(DEFAULT_VARIANTS[1], drift=None)


def _store(tmp_path, parts: list[tuple[int, int, tuple, datetime, int]]) -> str:
    """A store of simulated windows: (traces, seed, variants, start, days) each."""
    for i, (n, seed, variants, start, days) in enumerate(parts):
        sim = aiscale.simulate(n, seed=seed, variants=variants, start=start, days=days)
        prefix = f"w{i}-"
        write_parquet(sim.spans.assign(trace_id=prefix + sim.spans["trace_id"]),
                      sim.traces.assign(trace_id=prefix + sim.traces["trace_id"]), tmp_path / "sim", part=i)
    store = tmp_path / "store"
    aiscale.load([tmp_path / "sim"], store=store)
    return str(store)


@pytest.fixture(scope="module")
def stationary(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("stationary"), [(1600, 3, (FAST, STRONG), START, 14)])


def test_quiet_on_stationary_traffic_exit_0(stationary, tmp_path, capsys):
    out = tmp_path / "check.json"
    code = main(["check", "--store", stationary, "--since", "7d", "--budget-usd", "1e6",
                 "--json", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["status"] == "all clear" and record["fired"] == []
    assert {r["rule"] for r in record["rules"]} == {"budget", "success drop", "cost rise"}
    assert "[ok] budget" in capsys.readouterr().out


def test_budget_overrun_fires_exit_3(stationary, capsys):
    facts = aiscale.TraceStore(stationary).facts()
    week = facts["cost_usd"].sum() / 2  # about a week of spend
    budget = week * 30 / 7 / 2  # half of what 30 days at this traffic cost
    code = main(["check", "--store", stationary, "--budget-usd", str(budget), "--json", "-"])
    assert code == 3
    record = json.loads(capsys.readouterr().out)
    assert record["fired"] == ["budget"]
    assert record["rules"][0]["value"] > 0.99
    # twice the expected spend is safe
    assert main(["check", "--store", stationary, "--budget-usd", str(4 * budget)]) == 0


def test_planted_success_drop_fires(tmp_path, capsys):
    worse = replace(STRONG, success=(2.0, 3.0))  # mean task success 0.67 -> 0.40 in the last week
    store = _store(tmp_path, [(1200, 5, (STRONG,), START, 7),
                              (1200, 6, (worse,), datetime(2025, 6, 9, tzinfo=timezone.utc), 7)])
    assert main(["check", "--store", store, "--since", "7d"]) == 3
    assert "[FIRED] success drop" in capsys.readouterr().out
    # the drop is about 25 points: a 40-point threshold keeps it quiet
    assert main(["check", "--store", store, "--since", "7d", "--max-success-drop", "40"]) == 0


def test_usage_and_input_errors_exit_2(stationary, tmp_path, capsys):
    assert main(["check", "--store", str(tmp_path / "nowhere")]) == 2
    assert "no trace store" in capsys.readouterr().err
    assert main(["check", "--store", stationary, "--since=0d"]) == 2
    assert "positive duration" in capsys.readouterr().err
    assert main(["check", "--store", stationary, "--until", "2020-01-01"]) == 2
    assert "No traces in the window" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check", "--store", stationary, "--budget-usd", "lots"])
    assert exc.value.code == 2


def _false_alarms(reps: int, n: int) -> float:
    fired = 0
    for seed in range(reps):
        truth = aiscale.simulate(n, seed=1000 + seed, variants=(FAST, STRONG), days=14).truth.traces
        fired += bool(check_rules(truth, since="7d").fired)
    return fired / reps


def test_false_alarm_rate_on_stationary_traffic_small():
    # stated rate: at most alpha = 5% for the drift rules together; P(>= 7 of 40 | 5%) < 0.4%
    assert _false_alarms(40, 800) <= 6 / 40


@pytest.mark.slow
def test_false_alarm_rate_on_stationary_traffic():
    rate = _false_alarms(400, 1600)
    assert rate <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 400)


def test_rules_on_facts_frame_and_json_nulls():
    facts = pd.DataFrame({"started_at": pd.date_range("2025-01-01", periods=10, freq="D", tz="UTC"),
                          "cost_usd": np.nan, "success": None})
    result = check_rules(facts, since="3d", budget_usd=5)
    assert result.fired == []
    record = result.to_json()
    assert record["rules"][0]["detail"].startswith("not evaluated: cost is unknown")
    assert record["rules"][0]["value"] is None
