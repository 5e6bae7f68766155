"""The paths aiscale is measured against, each run as its own process by ``benchmarks/run.py``.

Usage (each prints one JSON line with its result)::

    python benchmarks/baselines.py bare FILE.jsonl OUT.parquet   # DuckDB's bare conversion
    python benchmarks/baselines.py pandas FILE.jsonl             # the naive pandas path
    python benchmarks/baselines.py rollup STORE                  # store.facts() vs hand SQL

``bare`` is the engine floor: ``COPY (SELECT * FROM read_json(FILE)) TO OUT (FORMAT parquet)``
with DuckDB's defaults (schema inferred, nested structs kept, nothing flattened or checked).
``pandas`` is what a user writes first: ``json.loads`` per line, ``pd.json_normalize`` of the
spans, the attribute lists turned into columns, ``groupby`` per trace (no pricing, no checks).
``rollup`` times ``TraceStore.facts()`` against :data:`HAND_SQL`, the same rules written by
hand in one DuckDB query over the same Parquet parts with the same rate table (spans
de-duplicated only when the store says two files carried the same span, as aiscale does),
once with DuckDB's default memory limit (80% of RAM) and once with aiscale's 1 GB cap, and
checks they all give the same numbers.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import duckdb
import numpy as np
import pandas as pd

DEDUPED = ("SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY trace_id, "
           "span_id ORDER BY source_file, source_row) AS rn FROM read_parquet($spans)) WHERE rn = 1")
HAND_SQL = """
WITH s AS ({spans}),
agents AS (SELECT trace_id, span_id, row_number() OVER (PARTITION BY trace_id
        ORDER BY start_time, span_id) AS rk FROM s WHERE kind = 'agent'),
llm AS (SELECT l.*, a.span_id IS NULL AS in_main,
        l.status = 'error' AND coalesce(l.output_tokens, 0) = 0 AS failed,
        r.input_usd_per_token AS ri, r.output_usd_per_token AS ro,
        coalesce(r.cache_read_usd_per_token, r.input_usd_per_token, 0) AS rcr,
        coalesce(r.cache_write_usd_per_token, r.input_usd_per_token, 0) AS rcw,
        coalesce(r.reasoning_usd_per_token, r.output_usd_per_token, 0) AS rre, r.call_usd AS rc
    FROM s l
    LEFT JOIN rates r ON coalesce(l.provider, '') = coalesce(r.provider, '') AND l.model = r.model
        AND CAST(l.start_time AS DATE) = r.day
        AND (r.min_input_tokens IS NULL OR l.input_tokens > r.min_input_tokens)
        AND (r.max_input_tokens IS NULL OR l.input_tokens <= r.max_input_tokens)
    LEFT JOIN agents a ON a.trace_id = l.trace_id AND a.span_id = l.parent_id AND a.rk > 1
    WHERE l.kind = 'llm'),
priced AS (SELECT *, CASE WHEN failed AND input_tokens IS NULL AND output_tokens IS NULL THEN true
        WHEN ri IS NOT NULL OR ro IS NOT NULL THEN input_tokens IS NOT NULL AND output_tokens IS NOT NULL
        ELSE rc IS NOT NULL END AS ok,
    CASE WHEN failed AND input_tokens IS NULL AND output_tokens IS NULL THEN 0.0 ELSE
        greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0)
                 - coalesce(cache_write_tokens, 0), 0) * coalesce(ri, 0)
        + coalesce(cache_read_tokens, 0) * rcr + coalesce(cache_write_tokens, 0) * rcw
        + greatest(coalesce(output_tokens, 0) - coalesce(reasoning_tokens, 0), 0) * coalesce(ro, 0)
        + coalesce(reasoning_tokens, 0) * rre + coalesce(rc, 0) END AS c FROM llm),
la AS (SELECT trace_id, count(*) AS n_llm_calls,
        count(*) FILTER (WHERE in_main AND NOT failed) AS iterations,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
        sum(reasoning_tokens) AS reasoning_tokens, sum(c) FILTER (WHERE ok) AS cost_sum,
        sum(reported_cost_usd) AS reported_cost_usd, count(*) FILTER (WHERE NOT ok) AS unpriced,
        sum(date_diff('microsecond', start_time, end_time)) / 1e6 AS llm_latency_s,
        arg_min(model, (start_time, span_id)) AS first_model FROM priced GROUP BY trace_id),
sa AS (SELECT trace_id, count(*) FILTER (WHERE kind = 'tool') AS n_tool_calls,
        sum(date_diff('microsecond', start_time, end_time)) FILTER (WHERE kind = 'tool') / 1e6
            AS tool_latency_s,
        count(*) FILTER (WHERE status = 'error') AS n_errors,
        max(date_diff('microsecond', start_time, end_time) / 1e6) FILTER (WHERE parent_id IS NULL)
            AS root_latency_s,
        count(*) FILTER (WHERE parent_id IS NULL) AS n_roots, min(start_time) AS first_start,
        date_diff('microsecond', min(start_time), max(end_time)) / 1e6 AS span_latency_s
    FROM s GROUP BY trace_id),
rep AS (SELECT trace_id, sum(n - 1) AS repeated_calls FROM (SELECT trace_id, count(*) AS n FROM s
        WHERE kind = 'tool' AND tool_arguments IS NOT NULL
        GROUP BY trace_id, tool_name, tool_arguments) GROUP BY trace_id),
tr AS (SELECT trace_id, min(started_at) AS started_at, max(task_id) AS task_id, max(trial) AS trial,
        max(variant) AS variant, max(success) AS success, max(score) AS score,
        max(user_id) AS user_id, max(session_id) AS session_id,
        arg_max(metadata, length(metadata)) AS metadata FROM read_parquet($traces) GROUP BY trace_id)
SELECT sa.trace_id, coalesce(tr.task_id, sa.trace_id) AS task_id, coalesce(tr.trial, 0) AS trial,
    coalesce(tr.variant, la.first_model) AS variant,
    coalesce(tr.started_at, sa.first_start) AS started_at, tr.success, tr.score, tr.user_id,
    tr.session_id, tr.metadata, coalesce(la.n_llm_calls, 0) AS n_llm_calls, sa.n_tool_calls,
    coalesce(la.iterations, 0) AS iterations, la.input_tokens, la.output_tokens,
    la.cache_read_tokens, la.cache_write_tokens, la.reasoning_tokens,
    CASE WHEN coalesce(la.n_llm_calls, 0) = 0 THEN 0.0 WHEN la.unpriced = 0 THEN la.cost_sum END
        AS cost_usd,
    la.reported_cost_usd, coalesce(la.unpriced, 0) AS unpriced_llm_calls,
    coalesce(CASE WHEN sa.n_roots = 1 THEN sa.root_latency_s END, sa.span_latency_s) AS latency_s,
    la.llm_latency_s, sa.tool_latency_s, sa.n_errors,
    coalesce(rep.repeated_calls, 0) AS repeated_calls
FROM sa LEFT JOIN la USING (trace_id) LEFT JOIN rep USING (trace_id) LEFT JOIN tr USING (trace_id)
ORDER BY sa.trace_id
"""
COMPARED = ["n_llm_calls", "n_tool_calls", "iterations", "input_tokens", "output_tokens",
            "cost_usd", "latency_s", "llm_latency_s", "tool_latency_s", "n_errors",
            "repeated_calls", "variant", "task_id", "success"]


def bare(path: str, out: str) -> dict:
    """DuckDB's own conversion of the file to Parquet, with its defaults."""
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_json('{path}')) TO '{out}' (FORMAT parquet)")
    return {"rows": con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]}


def naive_pandas(path: str) -> dict:
    """json.loads per line, json_normalize, attribute columns, groupby per trace."""
    spans = []
    with open(path) as handle:
        for line in handle:
            request = json.loads(line)
            for resource in request["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    spans.extend(scope["spans"])
    frame = pd.json_normalize(spans).drop(columns=["attributes"])
    attrs = pd.DataFrame([{a["key"]: next(iter(a["value"].values())) for a in s.get("attributes", [])}
                          for s in spans])
    del spans
    frame = frame.join(attrs)
    start = pd.to_numeric(frame["startTimeUnixNano"]) / 1e9
    end = pd.to_numeric(frame["endTimeUnixNano"]) / 1e9
    llm = frame["gen_ai.operation.name"].eq("chat")
    frame = frame.assign(
        start=start, end=end, llm=llm, tool=frame["gen_ai.operation.name"].eq("execute_tool"),
        error=frame["status.code"].astype(str).eq("2"),
        input_tokens=pd.to_numeric(frame["gen_ai.usage.input_tokens"]).where(llm),
        output_tokens=pd.to_numeric(frame["gen_ai.usage.output_tokens"]).where(llm))
    facts = frame.groupby("traceId").agg(
        start=("start", "min"), end=("end", "max"), n_llm_calls=("llm", "sum"),
        n_tool_calls=("tool", "sum"), n_errors=("error", "sum"),
        input_tokens=("input_tokens", "sum"), output_tokens=("output_tokens", "sum"))
    facts["latency_s"] = facts["end"] - facts["start"]
    return {"rows": int(len(frame)), "traces": int(len(facts))}


def _median_time(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def rollup(store_path: str, repeat: int = 3) -> dict:
    """Median time of store.facts() and of HAND_SQL (same parts, same rates); do they agree?"""
    from aiscale.facts.on_duckdb import bound_memory, rates_arrow
    from aiscale.pricing.rates import rate_table
    from aiscale.store.trace_store import TraceStore

    store = TraceStore(store_path)
    aiscale_s, facts = _median_time(store.facts, repeat)
    keys = store.sql("SELECT provider, model, CAST(start_time AS DATE) AS day, count(*) AS n_calls "
                     "FROM spans WHERE kind = 'llm' GROUP BY ALL")
    params = {"spans": store.parts("spans"), "traces": store.parts("traces")}
    spans = DEDUPED if store.spans_may_repeat else "SELECT * FROM read_parquet($spans)"
    query = HAND_SQL.replace("{spans}", spans)  # de-duplicated only when aiscale does it too
    result = {"aiscale_s": aiscale_s, "traces": len(facts)}
    for key, capped in (("hand_sql_s", False), ("hand_sql_capped_s", True)):
        con = duckdb.connect()  # DuckDB's defaults (memory up to 80% of RAM), or aiscale's cap
        con.execute("SET TimeZone = 'UTC'")
        if capped:
            bound_memory(con)
        con.register("rates", rates_arrow(rate_table(keys)))
        result[key], hand = _median_time(lambda con=con: con.execute(query, params).df(), repeat)
        result["agree"] = result.get("agree", True) and _agree(facts, hand)
    return result


def _agree(facts: pd.DataFrame, hand: pd.DataFrame) -> bool:
    if len(facts) != len(hand) or not (facts["trace_id"].to_numpy() == hand["trace_id"].to_numpy()).all():
        return False
    for column in COMPARED:
        a, b = facts[column], hand[column]
        if a.dtype.kind in "fiu" or str(a.dtype) in ("Int64", "Float64"):
            x, y = a.to_numpy(dtype=float, na_value=np.nan), b.to_numpy(dtype=float, na_value=np.nan)
            if not np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True):
                return False
        elif not a.astype(object).where(a.notna(), None).equals(b.astype(object).where(b.notna(), None)):
            return False
    return True


def main(argv: list[str]) -> None:
    command, *rest = argv
    if command == "bare":
        result = bare(*rest)
    elif command == "pandas":
        result = naive_pandas(*rest)
    elif command == "rollup":
        result = rollup(*rest)
    else:
        raise SystemExit(f"unknown command {command!r}; use bare, pandas or rollup")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
