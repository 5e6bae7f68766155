"""The OTLP loader's value rules: a value that cannot be what it claims is quarantined with its
rule (never stored as null), a record over the size bound is quarantined and the rest of the
file loads, and a UTF-8 BOM does not cost the first line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import otlp

TRACE = "5b8efff798038103d269b633813fc60c"
T0 = 1_750_000_000_000_000_000


def _line(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"spans": list(spans)}]}]})


def _span(n: int, attrs: list | None = None, **fields) -> dict:
    return {"traceId": TRACE, "spanId": f"{n:016x}", "name": f"s{n}",
            "startTimeUnixNano": str(T0 + n), "endTimeUnixNano": str(T0 + n + 10**9),
            "attributes": attrs or [], **fields}


def _chat(n: int, tokens: dict) -> dict:
    return _span(n, [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                     {"key": "gen_ai.usage.input_tokens", "value": tokens}])


def _load(tmp_path: Path, lines: list[str | bytes], name: str = "t.jsonl") -> aiscale.TraceStore:
    path = tmp_path / name
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return aiscale.load([path], store=tmp_path / "store")


def _reasons(store) -> dict[int, str]:
    quarantine = store.quarantine()
    return dict(zip(quarantine["source_row"], quarantine["reason"], strict=True))


# Token counts no int64 can hold, in each way OTLP JSON can write them; 1e9 fits but is absurd.
TOKENS = {
    "1e20 as intValue": ({"intValue": "100000000000000000000"}, "not a finite integer within int64"),
    "2^63 as intValue": ({"intValue": str(2**63)}, "not a finite integer within int64"),
    "2^63 as a JSON number": ({"intValue": 2**63}, "not a finite integer within int64"),
    "1e400 as doubleValue": ({"doubleValue": "1e400"}, "not a finite integer within int64"),
    "NaN as doubleValue": ({"doubleValue": "NaN"}, "not a finite integer within int64"),
    "Infinity as doubleValue": ({"doubleValue": "Infinity"}, "not a finite integer within int64"),
    "1e20 as a JSON number": ({"doubleValue": 1e20}, "not a finite integer within int64"),
    "1e9": ({"intValue": "1000000000"}, "absurd"),
}


def test_token_counts_beyond_int64_are_quarantined_not_null(tmp_path):
    lines = [_line(_chat(1, {"intValue": "120"}))]
    lines += [_line(_chat(i + 2, value)) for i, (value, _) in enumerate(TOKENS.values())]
    store = _load(tmp_path, lines)
    load = store.last_load
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (9, 1, 8)
    reasons = _reasons(store)
    for line, (case, (_, rule)) in enumerate(TOKENS.items(), start=2):
        assert rule in reasons[line] and "input_tokens" in reasons[line], case
    assert store.spans()["input_tokens"].tolist() == [120]


def test_an_intvalue_beyond_int64_on_any_attribute_is_quarantined(tmp_path):
    big = [{"key": "aiscale.trial", "value": {"intValue": "99999999999999999999"}}]
    fine = [{"key": "aiscale.trial", "value": {"intValue": "3"}}]
    store = _load(tmp_path, [_line(_span(1, fine)), _line(_span(2, big))])
    assert (store.last_load.rows_loaded, store.last_load.rows_quarantined) == (1, 1)
    assert _reasons(store)[2] == ('attribute "aiscale.trial" has an intValue that is not an '
                                  'int64: "99999999999999999999"')
    assert store.traces()["trial"].tolist() == [3]


TIMES = {  # startTimeUnixNano -> the rule it breaks
    "0": "startTimeUnixNano is zero or negative",
    "-5": "startTimeUnixNano is zero or negative",
    "1750000000": "before 1990 as unix nanoseconds (a time in seconds",  # seconds, not nanos
    "1750000000000": "before 1990 as unix nanoseconds",  # milliseconds
    "253402300799000000000": "startTimeUnixNano is after 2262-04-11",  # year 9999 in nanos
    "NaN": "startTimeUnixNano is not a finite number",
}


def test_start_times_that_are_not_times_are_quarantined_with_a_rule_naming_the_time(tmp_path):
    spans = [_span(1)] + [_span(i + 2, startTimeUnixNano=value) for i, value in enumerate(TIMES)]
    store = _load(tmp_path, [_line(s) for s in spans])
    assert (store.last_load.rows_loaded, store.last_load.rows_quarantined) == (1, len(TIMES))
    reasons = _reasons(store)
    for line, (value, rule) in enumerate(TIMES.items(), start=2):
        assert rule in reasons[line] and value in reasons[line], (value, reasons[line])
    assert "not an integer" not in reasons[6]


def test_times_written_as_json_numbers_follow_the_same_rules(tmp_path):
    good = _span(1, startTimeUnixNano=T0, endTimeUnixNano=T0 + 10**9)
    year_9999 = _span(2, startTimeUnixNano=2.534023008e20)
    seconds = _span(3, startTimeUnixNano=1750000000)
    store = _load(tmp_path, [_line(good, year_9999, seconds)])
    reasons = sorted(store.quarantine()["reason"])
    assert len(reasons) == 2 and "after 2262-04-11" in reasons[0] and "before 1990" in reasons[1]
    assert store.spans()["start_time"].tolist() == [pd.Timestamp(T0 // 1000, unit="us", tz="UTC")]


def test_an_end_time_of_zero_is_unknown_and_a_negative_end_is_quarantined(tmp_path):
    store = _load(tmp_path, [_line(_span(1, endTimeUnixNano="0")),
                             _line(_span(2, endTimeUnixNano="-1"))])
    assert pd.isna(store.spans()["end_time"]).tolist() == [True]  # 0 is protobuf's "unset"
    assert "endTimeUnixNano is zero or negative" in _reasons(store)[2]


def test_a_50_mb_record_is_quarantined_and_the_lines_after_it_load(tmp_path):
    huge = [{"key": "gen_ai.prompt", "value": {"stringValue": "x" * (50 << 20)}}]
    store = _load(tmp_path, [_line(_span(1)), _line(_span(2, huge)), _line(_span(3))])
    load = store.last_load
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (3, 2, 1)
    assert "50.0 MB on one line, over the 32 MB bound" in _reasons(store)[2]
    assert sorted(store.spans()["name"]) == ["s1", "s3"]


@pytest.mark.parametrize("block_bytes", [1 << 10, 1 << 16])  # the long line spans many blocks
def test_a_line_longer_than_the_bound_is_skipped_without_holding_it(tmp_path, monkeypatch,
                                                                     block_bytes):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(otlp, "MAX_LINE_BYTES", 200_000)
    big = [{"key": "blob", "value": {"stringValue": "y" * 500_000}}]
    lines = [_line(_span(1)), _line(_span(2, big)), "not json", _line(_span(4))]
    chunks = list(otlp.read(_write(tmp_path, lines)))
    spans = pd.concat([c.spans for c in chunks if c.spans is not None])
    assert sorted(spans["source_row"]) == [1, 4]
    bad = {q.source_row: q.reason for c in chunks for q in c.quarantined}
    assert set(bad) == {2, 3} and "over the 0 MB bound" in bad[2] and "invalid JSON" in bad[3]
    assert bad[2].startswith("record of 0.5 MB") and sum(c.rows_read for c in chunks) == 4


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_utf8_bom_does_not_cost_the_first_line(tmp_path):
    store = _load(tmp_path, [b"\xef\xbb\xbf" + _line(_span(1)).encode(), _line(_span(2))])
    load = store.last_load
    assert (load.files[0].format, load.rows_loaded, load.rows_quarantined) == ("otlp", 2, 0)
    pretty = tmp_path / "pretty.json"
    pretty.write_bytes(b"\xef\xbb\xbf" + json.dumps(json.loads(_line(_span(3))), indent=2).encode())
    chunks = list(otlp.read(pretty))
    assert [len(c.spans) for c in chunks] == [1] and not chunks[0].quarantined
