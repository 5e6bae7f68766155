"""The simulator against its own declared laws, and its writers against the loaders.

Expected distributions are computed here from the declared parameters with SciPy, not
from the simulator's own helpers, except where a test checks those helpers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import aiscale
from aiscale.sim.otlp import write_otlp
from aiscale.sim.simulate import simulate, simulate_to, write_parquet

REPO = Path(__file__).resolve().parents[1]
GAP_US = 2_000


@pytest.fixture(scope="module")
def big():
    """8,000 traces per default variant (2,000 tasks x 4 trials), with plain dtypes."""
    sim = simulate(32_000, seed=11)
    spans = sim.spans.astype({c: "object" for c in ("kind", "status", "tool_name", "tool_arguments",
                                                      "trace_id", "parent_id")})
    spans["dur_us"] = (spans["end_time"] - spans["start_time"]).dt.total_seconds().mul(1e6).round()
    spans["variant"] = spans["trace_id"].map(sim.traces.set_index("trace_id")["variant"].astype(object))
    return sim, spans


def _ok_llm(spans: pd.DataFrame) -> pd.DataFrame:
    llm = spans[(spans["kind"] == "llm") & (spans["status"] == "ok")].copy()
    llm = llm.sort_values(["trace_id", "start_time"], kind="stable")
    llm["k"] = llm.groupby("trace_id").cumcount() + 1
    for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        llm[c] = llm[c].astype("int64")
    return llm


def _chi_square_p(observed: np.ndarray, expected: np.ndarray) -> float:
    """Chi-square p-value after merging neighbouring bins until each expects >= 5."""
    obs, exp, o, e = [], [], 0.0, 0.0
    for oi, ei in zip(observed, expected, strict=True):
        o, e = o + oi, e + ei
        if e >= 5:
            obs.append(o), exp.append(e)
            o, e = 0.0, 0.0
    obs[-1], exp[-1] = obs[-1] + o, exp[-1] + e
    chi2 = float(np.sum((np.array(obs) - exp) ** 2 / np.array(exp)))
    return float(stats.chi2.sf(chi2, len(obs) - 1))


@pytest.mark.parametrize("name", ["fast-cheap", "strong", "strong-capped", "reasoning"])
def test_iterations_follow_declared_loop_law(big, name):
    sim, spans = big
    v = sim.truth.variant(name)
    traces = sim.traces[sim.traces["variant"] == name]
    counts = _ok_llm(spans[spans["variant"] == name]).groupby("trace_id").size()
    n_iter = counts.reindex(traces["trace_id"].astype(object)).to_numpy()
    k = np.arange(1, v.cap + 1)
    natural = stats.nbinom(v.loop.r, v.loop.p)
    law = (1 - v.stuck_share) * natural.pmf(k - 1)
    law[-1] = v.stuck_share + (1 - v.stuck_share) * natural.sf(v.cap - 2)
    observed = np.bincount(n_iter, minlength=v.cap + 1)[1:]
    assert observed.sum() == len(traces)
    assert _chi_square_p(observed, law * len(traces)) > 1e-3
    # a law off by 10% in its mean must be rejected at this sample size
    wrong = stats.nbinom(v.loop.r, v.loop.p / 1.1).pmf(k - 1)
    wrong[-1] += 1 - wrong.sum()
    assert _chi_square_p(observed, wrong * len(traces)) < 1e-3


def _spliced_cdf(v, x, factor=1.0):
    body = stats.lognorm(v.output.body.sigma, scale=v.output.body.median)
    x = np.asarray(x) / factor
    if v.output.tail_q is None:
        return body.cdf(x)
    u = body.ppf(v.output.tail_q)
    tail = stats.genpareto(v.output.tail_xi, scale=v.output.tail_scale).cdf(x - u)
    return np.where(x <= u, body.cdf(x), v.output.tail_q + (1 - v.output.tail_q) * tail)


@pytest.mark.parametrize("name,after", [("fast-cheap", False), ("reasoning", False),
                                        ("strong", False), ("strong", True)])
def test_output_tokens_follow_declared_law(big, rng, name, after):
    sim, spans = big
    v = sim.truth.variant(name)
    llm = _ok_llm(spans[spans["variant"] == name])
    drifted = llm["start_time"] >= pd.Timestamp(v.drift.at) if v.drift else False
    llm = llm[drifted == after] if v.drift else llm
    tokens = llm["output_tokens"].to_numpy() + rng.uniform(-0.5, 0.5, len(llm))
    factor = v.drift.output_factor if after else 1.0
    assert len(tokens) > 2_000
    assert stats.kstest(tokens, lambda x: _spliced_cdf(v, x, factor)).pvalue > 1e-3
    if after:  # the drift is there to be found: the undrifted law is rejected
        assert stats.kstest(tokens, lambda x: _spliced_cdf(v, x)).pvalue < 1e-6
    reasoning = llm["reasoning_tokens"].astype("int64").to_numpy()
    expected = np.round(v.reasoning_share * llm["output_tokens"].to_numpy())
    assert np.array_equal(reasoning, expected)


@pytest.mark.parametrize("name", ["fast-cheap", "strong"])
def test_input_growth_and_cache_share(big, name):
    sim, spans = big
    v = sim.truth.variant(name)
    llm = _ok_llm(spans[spans["variant"] == name])
    first = llm["trace_id"].map(llm[llm["k"] == 1].set_index("trace_id")["input_tokens"])
    assert np.array_equal(llm["input_tokens"] - first, v.growth * (llm["k"] - 1))
    later, start = llm[llm["k"] >= 2], llm[llm["k"] == 1]
    assert np.all(np.abs(later["cache_read_tokens"] - v.cache_share * later["input_tokens"]) <= 0.5)
    assert (later["cache_write_tokens"] == 0).all() and (start["cache_read_tokens"] == 0).all()
    writes = np.round(v.cache_share * start["input_tokens"]) if v.cache_writes else 0
    assert np.all(start["cache_write_tokens"] == writes)
    prompt = np.log(start["input_tokens"].to_numpy())
    assert stats.kstest(prompt, stats.norm(v.prompt.mu, v.prompt.sigma).cdf).pvalue > 1e-3


def test_error_rate_and_retries(big):
    sim, spans = big
    llm = spans[spans["kind"] == "llm"]
    for v in sim.truth.variants:
        status = llm.loc[llm["variant"] == v.name, "status"]
        share, n = (status == "error").mean(), len(status)
        assert abs(share - v.error_rate) < 4 * np.sqrt(v.error_rate * (1 - v.error_rate) / n), v.name
    failed = llm[llm["status"] == "error"]
    assert failed["error_type"].notna().all() and (failed["input_tokens"] == 0).all()
    last = llm.sort_values("start_time").groupby("trace_id")["status"].last()
    assert (last == "ok").all()  # every failed call is retried


def test_stuck_loops_are_planted_at_the_declared_share(big):
    sim, spans = big
    tools = spans[spans["kind"] == "tool"]
    repeated = (tools.groupby(["trace_id", "tool_name", "tool_arguments"]).size() - 1) \
        .groupby(level="trace_id").sum()
    truth = sim.truth.traces.set_index("trace_id")
    repeated = repeated.reindex(truth.index, fill_value=0)
    assert np.array_equal(repeated > 0, truth["stuck"])
    stuck = truth[truth["stuck"]]
    caps = stuck["variant"].map({v.name: v.cap for v in sim.truth.variants})
    assert np.array_equal(repeated[stuck.index], caps - stuck["stuck_start"])
    assert (stuck["iterations"] == caps).all() and not stuck["success"].any()
    for v in sim.truth.variants:
        share, n = truth.loc[truth["variant"] == v.name, "stuck"].mean(), (truth["variant"] == v.name).sum()
        assert abs(share - v.stuck_share) < 4 * np.sqrt(v.stuck_share * (1 - v.stuck_share) / n)


def test_latency_identity_and_timeline(big):
    sim, spans = big
    for v in sim.truth.variants:
        llm = _ok_llm(spans[spans["variant"] == v.name])
        ttft = (llm["dur_us"] - llm["output_tokens"] * round(v.tpot_s * 1e6)) / 1e6
        assert ttft.min() > 0
        assert stats.kstest(np.log(ttft), stats.norm(v.ttft.mu, v.ttft.sigma).cdf).pvalue > 1e-3
        tool = spans.loc[(spans["variant"] == v.name) & (spans["kind"] == "tool"), "dur_us"] / 1e6
        law = stats.norm(v.tool_latency.mu, v.tool_latency.sigma)
        assert stats.kstest(np.log(tool), law.cdf).pvalue > 1e-3
    spans = spans[spans["trace_id"].isin(set(sim.traces["trace_id"].iloc[:2_000]))]
    children = spans[spans["parent_id"].notna()]  # in time order within each trace
    roots = spans[spans["parent_id"].isna()].set_index("trace_id")
    per_trace = children.groupby("trace_id")["dur_us"].agg(["sum", "size"])
    expected = per_trace["sum"] + GAP_US * (per_trace["size"] + 1)
    assert np.array_equal(roots.loc[per_trace.index, "dur_us"], expected)
    gap = children["start_time"].to_numpy()[1:] - children["end_time"].to_numpy()[:-1]
    same = children["trace_id"].to_numpy()[1:] == children["trace_id"].to_numpy()[:-1]
    assert (gap[same] == pd.Timedelta(microseconds=GAP_US)).all()


@pytest.mark.parametrize("name", ["fast-cheap", "strong", "strong-capped", "reasoning"])
def test_truth_expectations_match_a_large_sample(big, name):
    sim, _ = big
    t = sim.truth.traces
    t = t[(t["variant"] == name) & ~t["after_drift"]]
    expected = sim.truth.expected(name)
    for column, key in (("success", "success"), ("iterations", "iterations"),
                        ("cost_usd", "cost_usd"), ("n_llm_calls", "llm_calls"),
                        ("output_tokens", "output_tokens"), ("censored", "censored")):
        values = t[column].astype(float)
        spread = np.sqrt(expected[key] * (1 - expected[key])) if column == "censored" else 0.0
        se = max(values.std(), spread) / np.sqrt(len(values))
        assert abs(values.mean() - expected[key]) < 4 * se + 1e-9, (column, values.mean(), expected[key])
    curve = sim.truth.loop_budget(name, [1, 3, 6, 8])
    for row in curve.itertuples():
        hit = (t["success"] & (t["iterations"] <= row.k)).astype(float)
        assert abs(hit.mean() - row.success_rate) < 4 * hit.std() / np.sqrt(len(t)) + 1e-9
        capped = np.minimum(t["iterations"], row.k).astype(float)
        assert abs(capped.mean() - row.mean_iterations) < 4 * capped.std() / np.sqrt(len(t)) + 1e-9


@pytest.mark.parametrize("name", ["strong", "strong-capped"])
def test_loop_budget_cost_and_observed_hazard_match_truth(big, name):
    sim, spans = big
    v = sim.truth.variant(name)
    before = sim.truth.traces.loc[~sim.truth.traces["after_drift"], "trace_id"]
    llm = _ok_llm(spans[(spans["variant"] == name) & spans["trace_id"].isin(set(before))])
    p = v.prices
    fresh = llm["input_tokens"] - llm["cache_read_tokens"] - llm["cache_write_tokens"]
    llm["cost"] = (p.input * fresh + p.cache_read * llm["cache_read_tokens"]
                   + p.cache_write * llm["cache_write_tokens"] + p.output * llm["output_tokens"])
    curve = sim.truth.loop_budget(name, [1, 4, 8]).set_index("k")
    for k, row in curve.iterrows():
        cost = llm[llm["k"] <= k].groupby("trace_id")["cost"].sum()
        assert abs(cost.mean() - row["mean_cost_usd"]) < 4 * cost.std() / np.sqrt(len(cost))
    n_iter = llm.groupby("trace_id")["k"].max()
    truth = sim.truth.traces.set_index("trace_id").loc[n_iter.index]
    stops = n_iter[~truth["stuck"] & ~truth["censored"]]
    for row in sim.truth.observed_hazard(name, [1, 3, 6]).itertuples():
        at_risk = (n_iter >= row.k).sum()
        share = (stops == row.k).sum() / at_risk
        assert abs(share - row.finish) < 4 * np.sqrt(row.finish * (1 - row.finish) / at_risk)


def test_daily_cycle_and_days(big):
    sim, _ = big
    started = sim.traces["started_at"]
    start = pd.Timestamp(sim.truth.start)
    days = (started - start).dt.days
    assert days.min() == 0 and days.max() == sim.truth.days - 1
    hours = ((started - start) - pd.to_timedelta(days, unit="D")).dt.total_seconds() / 3600
    a, peak, w = sim.truth.daily_amplitude, sim.truth.peak_hour, 2 * np.pi / 24

    def cdf(h):
        return (h + a / w * (np.sin(w * (h - peak)) + np.sin(w * peak))) / 24

    assert stats.kstest(hours, cdf).pvalue > 1e-3
    assert stats.kstest(hours, stats.uniform(0, 24).cdf).pvalue < 1e-6  # the cycle is there


@pytest.mark.parametrize("name", ["strong", "fast-cheap"])
def test_pass_hat_k_and_pass_at_k_match_truth(big, name):
    sim, _ = big
    t = sim.truth.traces
    per_task = t[t["variant"] == name].groupby("task_index")["success"]
    checks = [(per_task.all(), sim.truth.pass_hat_k(name, 4)),
              (per_task.any(), sim.truth.pass_at_k(name, 4)),
              (per_task.apply(lambda s: s.iloc[:2].all()), sim.truth.pass_hat_k(name, 2))]
    for observed, expected in checks:
        values = observed.astype(float)
        assert abs(values.mean() - expected) < 4 * values.std() / np.sqrt(len(values))


def test_same_seed_same_bytes(tmp_path):
    paths = []
    for run in range(2):
        sim = simulate(120, seed=5, chunk_traces=50)
        paths.append(write_otlp(sim.spans, sim.traces, tmp_path / f"run{run}.jsonl"))
        write_parquet(sim.spans, sim.traces, tmp_path / f"pq{run}")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    for name in ("spans-00000.parquet", "spans-00000.traces.parquet"):
        assert (tmp_path / "pq0" / name).read_bytes() == (tmp_path / "pq1" / name).read_bytes()
    other = simulate(120, seed=6, chunk_traces=50)
    assert write_otlp(other.spans, other.traces, tmp_path / "o.jsonl").read_bytes() != paths[0].read_bytes()
    chunked = tmp_path / "chunked"
    simulate_to(chunked, 120, seed=5, chunk_traces=50)
    assert (chunked / "otlp-traces.jsonl").read_bytes() == paths[0].read_bytes()


def test_memory_is_bounded_by_the_chunk(tmp_path):
    from aiscale.sim.engine import Plan, generate_chunk

    started = time.perf_counter()
    chunk = generate_chunk(Plan(n_traces=10**12, seed=3, chunk_traces=300), 10**9 - 1)
    assert len(chunk.traces) == 300 and time.perf_counter() - started < 5
    peaks = []
    for n in (600, 2_400):
        tracemalloc.start()
        simulate_to(tmp_path / str(n), n, seed=1, chunk_traces=300)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]


def test_otlp_lines_are_valid_export_requests(tmp_path):
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    sim = simulate(60, seed=2)
    path = write_otlp(sim.spans, sim.traces, tmp_path / "t.jsonl", traces_per_line=7)
    lines = path.read_text().splitlines()
    assert len(lines) == -(-60 // 7)
    requests = [json_format.Parse(line, ExportTraceServiceRequest()) for line in lines]
    spans = [s for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == len(sim.spans)
    first = json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root, llm = first[0], next(s for s in first if s["kind"] == 3)
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    row = sim.traces.iloc[0]
    assert root["traceId"] == row["trace_id"] and "parentSpanId" not in root
    assert attrs["aiscale.variant"] == {"stringValue": row["variant"]}
    assert attrs["aiscale.trial"] == {"intValue": str(row["trial"])}
    assert attrs["aiscale.outcome.success"] == {"boolValue": bool(row["success"])}
    usage = {a["key"]: a["value"] for a in llm["attributes"]}["gen_ai.usage.input_tokens"]
    assert set(usage) == {"intValue"} and isinstance(usage["intValue"], str)
    assert int(llm["endTimeUnixNano"]) > int(llm["startTimeUnixNano"])


FACT_CHECKS = ["n_llm_calls", "n_tool_calls", "input_tokens", "output_tokens", "cache_read_tokens",
               "cache_write_tokens", "reasoning_tokens", "n_errors", "repeated_calls"]


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """400 traces written as canonical Parquet and rolled up through the store."""
    tmp = tmp_path_factory.mktemp("direct")
    sim = simulate(400, seed=4)
    write_parquet(sim.spans, sim.traces, tmp / "pq")
    return sim, aiscale.load(tmp / "pq", store=tmp / "store").facts().set_index("trace_id")


def test_parquet_loads_to_true_facts(direct):
    sim, facts = direct
    facts = facts.copy()
    truth = sim.truth.traces.set_index("trace_id").loc[facts.index]
    for column in FACT_CHECKS:
        assert np.array_equal(facts[column].astype("int64"), truth[column]), column
    no_tools = facts["n_tool_calls"] == 0  # tool latency of a trace without tool calls: null
    assert facts.loc[no_tools, "tool_latency_s"].isna().all()
    facts["tool_latency_s"] = facts["tool_latency_s"].astype(float).where(~no_tools, 0.0)
    for column in ("cost_usd", "latency_s", "llm_latency_s", "tool_latency_s"):
        np.testing.assert_allclose(facts[column].astype(float), truth[column], rtol=1e-9, err_msg=column)
    assert np.array_equal(facts["success"].astype(bool), truth["success"])
    assert (facts["variant"] == truth["variant"]).all() and (facts["task_id"] == truth["task_id"]).all()


def test_otlp_loads_back_to_the_same_facts(direct, tmp_path):
    sim, direct = direct
    path = write_otlp(sim.spans, sim.traces, tmp_path / "t.jsonl")
    store = aiscale.load(path, store=tmp_path / "b")
    assert store.last_load.rows_quarantined == 0
    loaded = store.facts().set_index("trace_id")
    assert list(loaded.index) == list(direct.index)
    columns = FACT_CHECKS + ["iterations", "latency_s", "llm_latency_s", "tool_latency_s", "cost_usd",
                             "success", "score", "variant", "task_id", "trial", "user_id",
                             "session_id", "started_at"]
    pd.testing.assert_frame_equal(loaded[columns], direct[columns])


def test_cli_writes_otlp_and_parquet(tmp_path):
    from aiscale.cli.main import main

    assert main(["simulate", "-o", str(tmp_path / "o"), "--traces", "30", "--seed", "1"]) == 0
    truth = json.loads((tmp_path / "o" / "truth.json").read_text())
    assert truth["n_traces"] == 30 and truth["seed"] == 1
    assert main(["simulate", "-o", str(tmp_path / "p"), "--traces", "30", "--format", "parquet"]) == 0
    assert len(aiscale.load(tmp_path / "p", store=tmp_path / "s").facts()) == 30


def test_bundled_demo_is_reproducible_and_small(tmp_path):
    demo = REPO / "data" / "demo"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_demo.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("otlp-traces.jsonl", "truth.json", "SEED.md"):
        assert (tmp_path / name).read_bytes() == (demo / name).read_bytes(), name
    assert sum(p.stat().st_size for p in demo.iterdir()) < 5e6
    record = json.loads((demo / "truth.json").read_text())
    assert len(record["variants"]) >= 3 and record["n_trials"] >= 2 and record["stuck_trace_ids"]


def test_bad_arguments_name_the_parameter(tmp_path):
    from aiscale.sim.laws import DEFAULT_VARIANTS, LoopLaw

    with pytest.raises(ValueError, match="`n_trials` must be >= 1, but 0"):
        simulate(10, n_trials=0)
    with pytest.raises(ValueError, match=r"`format` must be one of \['otlp', 'parquet'\], but 'csv'"):
        simulate_to(tmp_path, 10, format="csv")
    with pytest.raises(ValueError, match="`family` must be one of"):
        LoopLaw(2.0, 0.3, "poisson")
    with pytest.raises(ValueError, match="`variant` must be one of"):
        simulate(4).truth.variant("strnog")
    with pytest.raises(TypeError, match="Unknown options"):
        simulate(4, colour="red")
    with pytest.raises(ValueError, match="distinct"):
        simulate(4, variants=DEFAULT_VARIANTS[:1] * 2)


def test_custom_variants(tmp_path):
    from dataclasses import replace

    from aiscale.sim.laws import DEFAULT_VARIANTS, LoopLaw

    calm = replace(DEFAULT_VARIANTS[0], name="calm", error_rate=0.0, stuck_share=0.0,
                   loop=LoopLaw(1.0, 0.5, "geometric"))
    sim = simulate(200, seed=1, variants=(calm,), n_trials=2)
    assert (sim.spans["status"] == "ok").all() and not sim.truth.traces["stuck"].any()
    assert set(sim.traces["variant"]) == {"calm"} and sim.truth.n_tasks == 100
    assert sim.truth.summary().loc["calm", "expected_iterations"] == pytest.approx(2.0, rel=1e-9)


def test_bundled_demo_loads_with_its_truth(tmp_path):
    demo = REPO / "data" / "demo"
    store = aiscale.load(demo, store=tmp_path / "store")
    assert store.last_load.rows_quarantined == 0
    facts = store.facts().set_index("trace_id")
    record = json.loads((demo / "truth.json").read_text())
    assert len(facts) == record["n_traces"]
    stuck = facts.index.isin(record["stuck_trace_ids"])
    assert (facts.loc[stuck, "repeated_calls"] > 0).all()
    assert (facts.loc[~stuck, "repeated_calls"] == 0).all()
    assert facts["variant"].nunique() == len(record["variants"]) and facts["n_errors"].sum() > 0
    assert facts["cost_usd"].notna().all()  # every simulated model is priced by genai-prices


def test_each_simulated_trace_states_its_step_cap_through_the_otlp_round_trip(tmp_path):
    from aiscale.report.sections_loops import loop_caps

    truth = simulate_to(tmp_path / "out", 40, seed=3, format="otlp")
    facts = aiscale.load([tmp_path / "out"], store=tmp_path / "store").facts()
    caps = {v.name: v.cap for v in truth.variants}
    stated = facts["metadata"].map(lambda m: json.loads(m)["step_cap"])
    assert (stated == facts["variant"].map(caps)).all()
    censored = loop_caps(facts)["censored"].to_numpy()
    cut = (facts["iterations"] >= facts["variant"].map(caps)) & ~facts["success"].astype(bool)
    assert (censored == cut.to_numpy()).all() and cut.any()


def test_spans_without_any_attribute_keep_their_rows(tmp_path):
    """Arrow's skip-nulls join drops a row whose fragments are all null; every span must stay
    in its place with an empty attribute list."""
    sim = simulate(12, seed=4)
    spans = sim.spans.copy()
    bare = spans.index[(spans["parent_id"].notna()) & (spans["kind"] == "tool")][:3]
    for column in ("provider", "model", "tool_name", "tool_arguments", "error_type", "attributes"):
        spans.loc[bare, column] = None
    spans.loc[bare, "kind"] = "other"  # no gen_ai.operation.name either
    path = write_otlp(spans, sim.traces, tmp_path / "t.jsonl")
    written = [s for line in path.read_text().splitlines()
               for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert [s["spanId"] for s in written] == list(spans["span_id"])
    by_id = {s["spanId"]: s for s in written}
    assert all(by_id[i]["attributes"] == [] for i in spans.loc[bare, "span_id"])
