"""Claude Code loader: every hand-measured count in the SOURCE.md files, subagents, bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from genai_prices import Usage, calc_price

import aiscale
from aiscale.analysis.tradeoffs.latency import busy_seconds
from aiscale.cli.main import main as cli_main
from aiscale.loaders import claude_code, detect
from aiscale.loaders.base import read_head
from aiscale.report.render import report

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
ROOT = REAL / "claude-code-sessions"
SONNET45, HAIKU45, OPUS46 = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-6"
SONNET4, OPUS45 = "claude-sonnet-4-20250514", "claude-opus-4-5-20251101"

# SOURCE.md "Measured contents", per file: API calls after dedupe, input / cache_creation /
# cache_read sums (first line per call), output (LAST line per call), output (first line per
# call), models of the assistant lines.
MEASURED = {
    "codemie-code-bedrock-proxy/flat-agents-2.0.64/4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl":
        (7, 33, 37172, 214627, 806, 415, {SONNET45}),
    "codemie-code-bedrock-proxy/flat-agents-2.0.64/agent-36541525.jsonl": (1, 3, 16976, 0, 3, 3, {SONNET45}),
    "codemie-code-bedrock-proxy/flat-agents-2.0.64/agent-50243ee8.jsonl":
        (1, 16878, 0, 0, 237, 237, {"converse/jp.anthropic.claude-haiku-4-5-20251001-v1:0"}),
    "codemie-code-bedrock-proxy/subagents-2.1.7/turn-2.jsonl": (11, 537, 157962, 223343, 10099, 33, {SONNET45}),
    "codemie-code-bedrock-proxy/subagents-2.1.7/turn-2/subagents/agent-a485154.jsonl":
        (6, 5233, 115531, 91980, 1845, 80, {SONNET45}),
    "codemie-code-bedrock-proxy/session-9eda1058.jsonl": (5, 47, 147267, 22912, 4509, 13, {SONNET45}),
    "d-kimuson-claude-code-viewer-2025-09/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl":
        (170, 818, 137976, 3647854, 51933, 49780, {SONNET4}),
    "d-kimuson-claude-code-viewer-2025-09/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl":
        (20, 129, 47747, 324259, 3629, 2498, {SONNET4}),
    "d-kimuson-claude-code-viewer-2025-09/1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl":
        (7, 93, 12698, 103219, 953, 268, {SONNET4}),
    "marot-spotter-ae4a77f8/ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl":
        (217, 242, 237121, 16553628, 49467, 9935, {OPUS46, HAIKU45}),
    "marot-spotter-ae4a77f8/ae4a77f8-aedd-4bc1-888f-c94edc91af04/subagents/agent-aac57f5.jsonl":
        (3, 2408, 18814, 29274, 7, 7, {SONNET45}),
    "marot-spotter-ae4a77f8/ae4a77f8-aedd-4bc1-888f-c94edc91af04/subagents/agent-acompact-946d2b.jsonl":
        (1, 3, 121689, 17842, 8, 8, {OPUS46}),
    "moredip-session-share/4b2030ed-5563-49ea-b703-6a002f2d3cc8.jsonl": (2, 18, 6682, 32772, 4, 4, {OPUS45}),
    "moredip-session-share/4b2030ed-5563-49ea-b703-6a002f2d3cc8/subagents/agent-a2018e5.jsonl":
        (2, 4, 12675, 11560, 8, 8, {OPUS45}),
    "packmind-context-evaluator-entire/00-21d14f57b8/0/full.jsonl": (25, 29, 43373, 1119895, 528, 528, {OPUS46}),
    "packmind-context-evaluator-entire/17-252607bde7/0/full.jsonl": (28, 32, 51295, 1478977, 975, 279, {OPUS46}),
    "packmind-context-evaluator-entire/17-252607bde7/1/full.jsonl": (16, 130, 46851, 715641, 2909, 28, {HAIKU45}),
    "packmind-context-evaluator-entire/17-252607bde7/2/full.jsonl": (30, 244, 94426, 1452142, 2482, 52, {HAIKU45}),
}
ENTIRE = ROOT / "packmind-context-evaluator-entire"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([ROOT], store=tmp_path_factory.mktemp("cc") / "store")


@pytest.fixture(scope="module")
def spans(store):
    return store.spans()


@pytest.fixture(scope="module")
def facts(store):
    return store.facts().set_index("trace_id")


def _llm(spans: pd.DataFrame, relative: str) -> pd.DataFrame:
    return spans[(spans.kind == "llm") & (spans.source_file == str(ROOT / relative))]


def _first_output(calls: pd.DataFrame) -> int:
    return sum(json.loads(a)["first_line_output_tokens"] for a in calls.attributes)


@pytest.mark.parametrize("relative", sorted(MEASURED))
def test_each_file_gives_the_hand_measured_calls_tokens_and_models(spans, relative):
    n, fresh, write, read, output, first_output, models = MEASURED[relative]
    calls = _llm(spans, relative)
    assert len(calls) == n
    assert calls.cache_write_tokens.sum() == write and calls.cache_read_tokens.sum() == read
    assert calls.input_tokens.sum() - write - read == fresh  # input includes the cache (OTel)
    assert calls.output_tokens.sum() == output  # the last line of each response
    assert _first_output(calls) == first_output  # the partial count of the first lines, kept aside
    assert set(calls.model) == models
    assert calls.reasoning_tokens.isna().all()  # not reported separately: unknown, not 0


def test_every_file_is_read_exactly_and_the_rest_is_skipped(store):
    files = store.last_load.summary()
    loaded, skipped = files[files.status == "loaded"], files[files.status == "skipped"]
    assert set(loaded.path) == {str(p) for p in ROOT.rglob("*.jsonl")} and len(loaded) == 24
    assert (loaded.format == "claude-code").all()
    assert {Path(p).suffix for p in skipped.path} == {".md", ".json", ".upstream"}
    assert sum(Path(p).name == "metadata.json" for p in skipped.path) == 5  # Entire's summaries
    assert (loaded.rows_read == loaded.rows_loaded + loaded.rows_quarantined).all()
    assert loaded.rows_quarantined.sum() == 0 and store.last_load.orphan_spans == 0


@pytest.mark.parametrize("session", ["00-21d14f57b8/0", "17-252607bde7/0", "17-252607bde7/1", "17-252607bde7/2"])
def test_entire_metadata_totals_agree(facts, session):
    meta = json.loads((ENTIRE / session / "metadata.json").read_text())
    usage, row = meta["token_usage"], facts.loc[meta["session_id"]]
    assert row.n_llm_calls == usage["api_call_count"]
    assert row.cache_write_tokens == usage["cache_creation_tokens"]
    assert row.cache_read_tokens == usage["cache_read_tokens"]
    assert row.input_tokens == usage["input_tokens"] + usage["cache_creation_tokens"] + usage["cache_read_tokens"]
    assert row.output_tokens == usage["output_tokens"]


def test_entire_checkpoint_total_over_its_three_sessions(facts):
    meta = json.loads((ENTIRE / "17-252607bde7" / "metadata.json").read_text())
    ids = [json.loads((ENTIRE / "17-252607bde7" / s["metadata"].rsplit("/", 2)[1] / "metadata.json")
                      .read_text())["session_id"] for s in meta["sessions"]]
    rows, usage = facts.loc[ids], meta["token_usage"]
    assert rows.n_llm_calls.sum() == usage["api_call_count"] == 74
    assert rows.output_tokens.sum() == usage["output_tokens"] == 6366
    assert rows.cache_read_tokens.sum() == usage["cache_read_tokens"] == 3646760


def test_subagent_calls_are_in_their_session_once(facts, spans):
    # marot: 217 main + 3 + 1 subagent calls; its 25 agent_progress lines repeat subagent usage
    marot = facts.loc["ae4a77f8-aedd-4bc1-888f-c94edc91af04"]
    assert marot.n_llm_calls == 217 + 3 + 1 and marot.output_tokens == 49467 + 7 + 8
    assert marot.iterations == 217  # the main loop only
    # moredip 0ccf1a04: 37 usage lines, 21 distinct (message.id, requestId) over session + 5 subagent files
    assert facts.loc["0ccf1a04-1b4c-43b6-8aa5-79e41db43a68"].n_llm_calls == 21
    assert set(_llm(spans, "moredip-session-share/0ccf1a04-1b4c-43b6-8aa5-79e41db43a68.jsonl").model) == {
        OPUS45, HAIKU45}
    # codemie 2.1.7: 11 + 6 calls, output 10,099 + 1,845
    turn2 = facts.loc["e9fb405b-169f-40eb-9396-7e75076f045d"]
    assert (turn2.n_llm_calls, turn2.output_tokens, turn2.iterations) == (17, 10099 + 1845, 11)


def test_subagents_in_each_layout_are_child_agent_spans(spans):
    agents = spans[(spans.kind == "agent") & spans.parent_id.notna()]
    assert (agents.parent_id == "agent").all()
    by_layout = agents.attributes.map(lambda a: json.loads(a)["layout"]).value_counts().to_dict()
    # flat: 36541525, 50243ee8; folder: a485154, aac57f5, acompact-946d2b, 5 moredip + a2018e5
    assert by_layout["flat"] == 2 and by_layout["subagents-folder"] == 9
    # inline (1.0.108): two Task subagents in 5c0375b4, of 3 and 7 calls (counted by hand)
    inline = _llm(spans, "d-kimuson-claude-code-viewer-2025-09/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl")
    assert sorted(inline.parent_id.value_counts().to_dict().values()) == [3, 7, 10]
    assert inline.parent_id.str.startswith("agent:").sum() == 10


def test_flat_warmup_agents_do_not_displace_the_main_loop(facts, spans):
    # the 2.0.64 warm-up subagents start 8 s before the session's first line
    row = facts.loc["4c2ddfdc-b619-4525-8d03-1950fb1b0257"]
    assert row.n_llm_calls == 9 and row.iterations == 7
    assert row.started_at == pd.Timestamp("2025-12-10T19:37:37.157Z")
    meta = json.loads(row.metadata)
    assert meta["git_branch"] == "analytics-v2"
    assert meta["project"] == "-tmp-private"  # the folder Claude Code wrote it in upstream


def test_proxied_calls_dedupe_by_message_id_and_unknown_cache_stays_null(spans):
    calls = _llm(spans, "codemie-code-bedrock-proxy/session-9eda1058.jsonl")
    assert calls.span_id.str.fullmatch(r"llm:msg_bdrk_\w+").all()  # no requestId in these files
    litellm = _llm(spans, "codemie-code-bedrock-proxy/flat-agents-2.0.64/agent-50243ee8.jsonl").iloc[0]
    assert pd.isna(litellm.cache_read_tokens) and pd.isna(litellm.cache_write_tokens)
    assert litellm.input_tokens == 16878 and litellm.provider == "aws"


def test_tool_spans_are_timed_by_their_results(spans):
    tools = spans[(spans.kind == "tool") & (spans.source_file == str(
        ROOT / "d-kimuson-claude-code-viewer-2025-09/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"))]
    assert len(tools) == 21 and (tools.status == "error").sum() == 3  # counted by hand
    glob = tools.set_index("span_id").loc["tool:toolu_01SpA34ZjSpRT7kiHgsgMTfP"]
    assert glob.tool_name == "Glob"
    assert glob.start_time == pd.Timestamp("2025-09-07T09:52:13.668Z")
    assert glob.end_time == pd.Timestamp("2025-09-07T09:52:15.528Z")


def test_project_branch_and_variant(facts):
    row = facts.loc["0ccf1a04-1b4c-43b6-8aa5-79e41db43a68"]
    meta = json.loads(row.metadata)
    # the folder name in the task output path the session itself recorded
    assert meta["project"] == "-Users-pete-tmp-claude-code-sessions"
    assert row.variant == OPUS45  # the main thread's model with the most calls


def test_variant_can_be_another_field(tmp_path, monkeypatch):
    path = ROOT / "moredip-session-share/4b2030ed-5563-49ea-b703-6a002f2d3cc8.jsonl"
    monkeypatch.setenv(claude_code.VARIANT_ENV, "project")
    trace = next(claude_code.read(path)).traces.iloc[0]
    assert trace.variant == json.loads(trace.metadata)["project"] and trace.variant.startswith("-")
    monkeypatch.setenv(claude_code.VARIANT_ENV, "modle")
    with pytest.raises(ValueError, match=r"AISCALE_CLAUDE_CODE_VARIANT.*must be one of .*'modle'"):
        next(claude_code.read(path))


def test_costs_are_genai_prices_per_call(facts, spans):
    calls = spans[(spans.kind == "llm") & (spans.trace_id == "4b2030ed-5563-49ea-b703-6a002f2d3cc8")]
    expected = 0.0
    for call in calls.itertuples():
        usage = Usage(input_tokens=int(call.input_tokens), cache_read_tokens=int(call.cache_read_tokens),
                      cache_write_tokens=int(call.cache_write_tokens), output_tokens=int(call.output_tokens))
        when = call.start_time.to_pydatetime().astimezone(dt.timezone.utc)
        expected += float(calc_price(usage, call.model, provider_id="anthropic",
                                     genai_request_timestamp=when).total_price)
    assert facts.loc["4b2030ed-5563-49ea-b703-6a002f2d3cc8"].cost_usd == pytest.approx(expected, rel=1e-9)
    assert facts.cost_usd.notna().all() and (facts.unpriced_llm_calls == 0).all()


def _line(kind: str, **fields) -> str:
    base = {"type": kind, "sessionId": "s-1", "timestamp": "2026-01-02T03:04:05.000Z", "cwd": "/w/p",
            "isSidechain": False, "uuid": f"u{len(fields)}"}
    return json.dumps({**base, **fields})


def _assistant(message_id: str | None, model: str, usage: dict, request: str | None = "r") -> str:
    message = {"model": model, "usage": usage, "content": []}
    if message_id is not None:
        message["id"] = message_id
    extra = {"requestId": request} if request else {}
    return _line("assistant", message=message, **extra)


def test_unknown_model_is_unpriced_never_zero(tmp_path):
    path = tmp_path / "s-1.jsonl"
    path.write_text(_assistant("m1", "claude-imaginary-9", {"input_tokens": 5, "output_tokens": 7}) + "\n")
    row = aiscale.load([path], store=tmp_path / "st").facts().iloc[0]
    assert pd.isna(row.cost_usd) and row.unpriced_llm_calls == 1 and row.output_tokens == 7


def test_bad_lines_are_quarantined_with_file_line_and_rule(tmp_path):
    path = tmp_path / "s-1.jsonl"
    good = _assistant("m1", OPUS46, {"input_tokens": 5, "output_tokens": 7})
    lines = [good, _assistant(None, OPUS46, {"input_tokens": 1, "output_tokens": 1}),
             _assistant("m2", OPUS46, {"input_tokens": -3, "output_tokens": 1}), good[:40]]
    path.write_text("\n".join(lines) + "\n")
    store = aiscale.load([path], store=tmp_path / "st")
    load = store.last_load.files[0]
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (5, 2, 3)  # root + 1 call loaded
    reasons = store.quarantine().set_index("source_row").reason
    assert "no `message.id`" in reasons[2] and "`message.usage.input_tokens` must be a whole number" in reasons[3]
    assert "invalid JSON" in reasons[4]
    assert set(store.quarantine().source_file) == {str(path)}


def test_synthetic_and_progress_lines_are_not_calls(tmp_path):
    path = tmp_path / "s-1.jsonl"
    embedded = {"message": {"type": "assistant", "message": {"id": "m9", "model": OPUS46,
                                                             "usage": {"input_tokens": 50, "output_tokens": 9}}}}
    path.write_text("\n".join([
        _assistant("m1", OPUS46, {"input_tokens": 5, "output_tokens": 7}),
        _assistant("x", "<synthetic>", {"input_tokens": 0, "output_tokens": 0}, request=None),
        _line("progress", data={"type": "agent_progress", **embedded}),
    ]) + "\n")
    chunk = next(claude_code.read(path))
    assert list(chunk.spans.kind) == ["agent", "llm"] and chunk.spans.output_tokens.sum() == 7
    assert json.loads(chunk.spans.attributes.iloc[0])["synthetic_messages"] == 1


def test_sniffing_claims_the_sessions_and_nothing_else():
    for path in REAL.rglob("*"):
        if path.is_file() and path.stat().st_size:
            claimed = claude_code.sniff(path, read_head(path))
            assert claimed == (path.suffix == ".jsonl" and ROOT in path.parents), path
    assert detect(ROOT / "marot-spotter-ae4a77f8/ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl") is claude_code


def test_sniffing_a_huge_first_line_and_a_broken_one(tmp_path):
    huge = tmp_path / "huge.jsonl"
    huge.write_text(_line("user", message={"role": "user", "content": "x" * 100_000}) + "\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "user", "sessi\n' + _assistant("m1", OPUS46, {"input_tokens": 1}) + "\n")
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"type": "user", "id": 3, "text": "a chat export, not a session"}) + "\n")
    assert detect(huge) is claude_code and detect(broken) is claude_code
    assert not claude_code.sniff(other, read_head(other))


@pytest.mark.parametrize("notebook", ["overview", "cost-investigation"])
def test_reports_render_on_the_sessions(store, facts, tmp_path, notebook):
    out = report(store, notebook=notebook, out=tmp_path / f"{notebook}.html")
    page = out.read_text()
    executed = json.loads(out.with_suffix(".ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert f"13 traces cost at least ${facts.cost_usd.sum():,.2f}" in page  # output counts short of content
    assert "traces priced by aiscale is a lower bound" in page
    assert all(model in page for model in (OPUS46, HAIKU45, SONNET4, SONNET45, OPUS45))
    if notebook == "cost-investigation":
        assert facts.cost_usd.idxmax() == "ae4a77f8-aedd-4bc1-888f-c94edc91af04" and facts.cost_usd.idxmax() in page


def test_last_load_lists_sessions_calls_models_and_days(store):
    contents = store.last_load.contents
    # 13 sessions; calls: the sum of SOURCE.md's per-file counts; days: the UTC days of their times
    assert (contents.traces, contents.llm_calls, contents.days) == (13, 573, 10)
    models = contents.summary().set_index("model")
    expected = {}
    for n, *_, used in MEASURED.values():
        if len(used) == 1:
            (model,) = used
            expected[model] = expected.get(model, 0) + n
    # files of one model give that model's calls exactly (the mixed Opus/Haiku session adds to both)
    for model, calls in expected.items():
        assert models.loc[model, "calls"] >= calls
    assert models.loc[SONNET4, "calls"] == 170 + 20 + 7 and models.loc[SONNET4, "sessions"] == 3
    assert models["calls"].sum() == contents.llm_calls and len(models) == 6
    assert set(models.index) >= {m for *_, used in MEASURED.values() for m in used}
    assert "13 traces, 573 LLM calls, 6 models, 10 days" in repr(store.last_load)
    assert "this load added 13 traces with spans" in str(store.last_load)


def test_aiscale_load_lists_sessions_calls_models_and_days(tmp_path, capsys):
    assert cli_main(["load", str(ROOT), "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    # calls: the sum of SOURCE.md's per-file counts; days: the UTC days of their time ranges
    assert "13 traces with spans (573 LLM calls on 10 days, UTC)" in out
    assert f"models (6): {SONNET4} (197 calls), " in out  # 170 + 20 + 7 in SOURCE.md
    assert "skipped" in out and "metadata.json: not a known format" in out


def test_llm_share_of_latency_counts_parallel_subagent_calls_once(store, spans):
    facts = store.facts()
    summed = aiscale.latency(facts, n_boot=0).summary().set_index("variant")["llm_share"]
    union = aiscale.latency(facts, n_boot=0, spans=spans).summary().set_index("variant")["llm_share"]
    # the three Sonnet 4 sessions: summed call time is 1.4x their wall time (parallel Task agents)
    assert summed[SONNET4] > 1.3
    assert (union <= 1).all() and union[SONNET4] == pytest.approx(0.95, abs=0.01)
    busy = busy_seconds(spans)  # the union is never more than the summed time
    assert (busy <= facts.set_index("trace_id").loc[busy.index, "llm_latency_s"] + 1e-6).all()
    assert (busy < facts.set_index("trace_id").loc[busy.index, "llm_latency_s"] - 1).sum() == 4


def test_a_session_lasts_until_its_last_subagent_file_ends(facts):
    # 2.0.x writes subagents to flat agent-*.jsonl files; one of them ends 25 s after the main thread
    folder = ROOT / "codemie-code-bedrock-proxy" / "flat-agents-2.0.64"
    lines = [json.loads(line) for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()
             if line.strip()]
    stamps = pd.to_datetime([x["timestamp"] for x in lines if isinstance(x.get("timestamp"), str)], utc=True)
    assert {x.get("sessionId") for x in lines} - {None} == {"4c2ddfdc-b619-4525-8d03-1950fb1b0257"}
    row = facts.loc["4c2ddfdc-b619-4525-8d03-1950fb1b0257"]
    assert row.latency_s == pytest.approx((stamps.max() - stamps.min()).total_seconds(), abs=1e-3)
    assert row.latency_s > 79  # the main thread alone ends after 54 s


def _raw_calls() -> dict[tuple[str, str, str | None], tuple[int | None, int]]:
    """Independently of the loader: per (file, message.id, requestId) of the real sessions, the
    last line's output_tokens and the characters of every line's text, thinking and tool calls."""
    calls: dict = {}
    for path in sorted(ROOT.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            value = json.loads(line)
            message = value.get("message") if isinstance(value.get("message"), dict) else {}
            if value.get("type") != "assistant" or "usage" not in message or message.get("model") == "<synthetic>":
                continue
            chars = 0
            for block in message.get("content") or []:
                if block.get("type") == "text":
                    chars += len(block["text"])
                elif block.get("type") == "thinking":
                    chars += len(block["thinking"])
                elif block.get("type") == "tool_use":
                    chars += len(block["name"]) + len(json.dumps(block["input"], ensure_ascii=False))
            key = (str(path), message["id"], value.get("requestId"))
            calls[key] = (message["usage"]["output_tokens"], calls.get(key, (None, 0))[1] + chars)
    return calls


def test_output_counts_logged_at_a_streamed_responses_start_are_marked_lower_bounds(spans):
    """The moredip sessions (CLI 2.1.14-2.1.16) log the count of the response's start on every
    line (SOURCE.md: "output is a lower bound"): a 2,539-character answer with output_tokens 1.
    A call whose content holds more than 10 characters per logged token is marked, its count
    kept as logged; the rest (2.9 characters per token at the median) are not."""
    llm = spans[spans.kind == "llm"]
    attributes = llm.attributes.map(json.loads)
    got = {(f, a["message_id"], a.get("request_id")): (a["output_tokens_lower_bound"], a["output_chars"])
           for f, a in zip(llm.source_file, attributes, strict=True)}
    raw = _raw_calls()
    assert set(got) == set(raw)
    expected = {key: (chars > 10 * out, chars) for key, (out, chars) in raw.items()}
    assert got == expected
    marked = [key for key, (flag, _) in got.items() if flag]
    assert 150 <= len(marked) <= 200  # about three in ten calls of these sessions
    moredip = llm[llm.source_file.str.contains("moredip")]
    assert attributes[moredip.index].map(lambda a: a["output_tokens_lower_bound"]).mean() > 0.8
    assert llm.output_tokens.sum() == sum(out for out, _ in raw.values())  # counts kept as logged
