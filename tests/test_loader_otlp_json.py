"""The OTLP ``attributes`` JSON, written in Arrow, against an independent construction.

Each span's ``attributes`` must be the text ``json.dumps`` gives for a dict built by hand from
the exported attributes (in their order, less the ones read into columns) and the ``otel.*``
members: same keys, same order, same escaping (DuckDB writes ``\\u001F`` where Python writes
``\\u001f``), same number formats. The values are drawn at random over every ``AnyValue``
kind (strings that need escapes or none, Unicode, canonical and padded integers, doubles,
bools, bytes, arrays, kvlists), several blocks and few or many attributes per span; the keys
carry quotes, backslashes, control characters and non-ASCII text. ``to_json`` is checked
against DuckDB's own on every code point.
"""

from __future__ import annotations

import json
import random
import re

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from aiscale.loaders import otlp
from aiscale.loaders._otlp_json import canonical_ints, to_json
from aiscale.loaders._otlp_sql import SPAN_KINDS

ODD = ['"', "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "é", "☃", "😀", "\\u00ab", "/", " ", "a"]


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ODD) if rng.random() < 0.3 else rng.choice("abcxyz019_.")
                   for _ in range(size))


def _value(rng: random.Random, nested: bool = True) -> tuple[dict, object]:
    """A random AnyValue and the Python value ``json.dumps`` should write for it."""
    kind = rng.choice(["plain", "odd", "int", "padded", "double", "bool", "bytes"]
                      + (["array", "kvlist"] if nested else []))
    if kind == "plain":
        text = "".join(rng.choice("abc xyz-019") for _ in range(rng.randrange(0, 12)))
        return {"stringValue": text}, text
    if kind == "odd":
        text = _text(rng, rng.randrange(1, 9))
        return {"stringValue": text}, text
    if kind == "int":
        number = rng.choice([0, 7, -3, rng.randrange(-10**18, 10**18), 2**63 - 1, -2**63])
        return {"intValue": rng.choice([str(number), number])}, number  # OTLP writes a string
    if kind == "padded":
        number = rng.randrange(0, 1000)
        return {"intValue": rng.choice(["00", "+", " "]) + str(number)}, number
    if kind == "double":
        number = rng.choice([1.0, 0.5, -2.25, 1e20, 1.5e-7, rng.uniform(-1e6, 1e6), 3])
        return {"doubleValue": number}, float(number)
    if kind == "bool":
        flag = rng.random() < 0.5
        return {"boolValue": flag}, flag
    if kind == "bytes":
        return {"bytesValue": "AAEC/w=="}, "AAEC/w=="
    if kind == "array":
        items = [_value(rng, nested=False) for _ in range(rng.randrange(0, 4))]
        return {"arrayValue": {"values": [v for v, _ in items]}}, [p for _, p in items]
    entries = {f"k{i}-{_text(rng, 2)}": _value(rng, nested=False) for i in range(rng.randrange(0, 3))}
    return ({"kvlistValue": {"values": [{"key": k, "value": v} for k, (v, _) in entries.items()]}},
            {k: p for k, (_, p) in entries.items()})


def _dumps(value: object) -> str:
    """``json.dumps`` as DuckDB writes JSON: no spaces, Unicode as is, ``\\u001F`` in capitals."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub(r"(?<!\\)((?:\\\\)*)\\u00([0-9a-f]{2})",
                  lambda m: m.group(1) + "\\u00" + m.group(2).upper(), text)


def _spans(rng: random.Random, count: int) -> tuple[list[str], dict[str, str]]:
    """OTLP lines with ``count`` spans, and the attributes JSON each span id should get."""
    resource = {"service.name": "svc", _text(rng, 4) + "r": "x"}
    scope = {"name": "scope" + _text(rng, 3), "version": "1.0"}
    lines, expected, spans = [], {}, []
    for n in range(count):
        span_id = f"{n + 1:016x}"
        attrs, kept = [], {}
        if rng.random() < 0.5:  # an LLM call: its provider, model and tokens go to columns
            attrs += [("gen_ai.operation.name", {"stringValue": "chat"}),
                      ("gen_ai.provider.name", {"stringValue": "openai"}),
                      ("gen_ai.request.model", {"stringValue": "gpt-4o"}),
                      ("gen_ai.usage.input_tokens", {"intValue": "12"})]
            kept["gen_ai.operation.name"] = "chat"
        for i in range(rng.choice([0, 1, 3, 12])):
            key = f"{i}-{_text(rng, rng.randrange(0, 6))}"
            value, python = _value(rng)
            attrs.insert(rng.randrange(len(attrs) + 1), (key, value))
            kept[key] = python
        kept = {k: kept[k] for k, _ in attrs if k in kept}  # the exported order
        kind = rng.choice([1, 2, 3])
        status = {"code": 2, "message": _text(rng, 5)} if rng.random() < 0.3 else {"code": 1}
        span = {"traceId": f"{n // 4 + 1:032x}", "spanId": span_id, "name": "s", "kind": kind,
                "startTimeUnixNano": "1750000000000000000", "status": status,
                "attributes": [{"key": k, "value": v} for k, v in attrs]}
        members = dict(kept)
        members["otel.span.kind"] = SPAN_KINDS[str(kind)]
        if status.get("message"):
            members["otel.status.message"] = status["message"]
        members["otel.resource"] = resource
        members["otel.scope"] = scope
        if rng.random() < 0.2:
            span["traceState"] = "k=" + _text(rng, 3)
            members["otel.trace_state"] = span["traceState"]
        spans.append(span)
        expected[span_id] = _dumps(members)
    for at in range(0, count, 7):
        lines.append(json.dumps({"resourceSpans": [{
            "resource": {"attributes": [{"key": k, "value": {"stringValue": v}}
                                        for k, v in resource.items()]},
            "scopeSpans": [{"scope": scope, "spans": spans[at:at + 7]}]}]}))
    return lines, expected


@pytest.mark.parametrize("seed", [1, 2])
def test_attributes_json_is_what_json_dumps_writes(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 1 << 16)  # several blocks, each mapped apart
    rng = random.Random(seed)
    lines, expected = _spans(rng, 400)
    path = tmp_path / "random.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chunks = list(otlp.read(path))
    assert all(not c.quarantined for c in chunks)
    got = {}
    for chunk in chunks:
        table = chunk.span_table
        got.update(zip(table.column("span_id").to_pylist(), table.column("attributes").to_pylist(),
                       strict=True))
    assert len(got) == len(expected) == 400
    wrong = [span for span in expected if got[span] != expected[span]]
    assert not wrong, (expected[wrong[0]], got[wrong[0]])
    assert any("\\u001F" in text for text in got.values())  # the escapes were exercised


def test_to_json_is_duckdbs_on_every_code_point():
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    texts = [*points, "".join(points[:300]), 'a"b\\c', "", "\\u00ab"]
    con = duckdb.connect()
    con.register("texts", pa.table({"t": texts}))
    theirs = con.sql("SELECT to_json(t) AS j FROM texts").to_arrow_table().column("j").to_pylist()
    assert [to_json(t) for t in texts] == theirs


def test_the_exception_type_is_read_however_the_event_name_is_written(tmp_path):
    def span(span_id: str, name_json: str) -> str:
        event = ('{"name":' + name_json + ',"attributes":[{"key":"exception.type",'
                 '"value":{"stringValue":"TimeoutError"}}]}')
        return ('{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"' + span_id + '",'
                '"startTimeUnixNano":"1750000000000000000","events":[' + event + ']}')

    spans = [span("0000000000000001", '"exception"'), span("0000000000000002", '"exc\\u0065ption"'),
             span("0000000000000003", '"retry"')]
    path = tmp_path / "events.jsonl"
    path.write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[' + ",".join(spans) + "]}]}]}\n")
    table = next(otlp.read(path)).span_table
    assert table.column("error_type").to_pylist() == ["TimeoutError", "TimeoutError", None]
    attributes = [json.loads(text) for text in table.column("attributes").to_pylist()]
    assert [list(a) for a in attributes] == [["otel.scope", "otel.events"]] * 3  # no resource
    assert attributes[1]["otel.events"][0]["name"] == "exception"


def test_canonical_ints_are_the_regex_on_every_kind_of_text():
    """The NumPy reading of canonical integers against RE2's on the regex it replaced."""
    rng = random.Random(5)
    pieces = ["0", "00", "-", "-0", "+1", " 1", "1 ", "1e3", "1.0", "9" * 18, "9" * 19, "-" + "9" * 18,
              "-" + "9" * 19, "1" + "0" * 17, "٣", "１", "12\n", "", "--1", "1-", "0x1"]
    texts = pieces + ["".join(rng.choice("0123456789-+ .e") for _ in range(rng.randrange(0, 21)))
                      for _ in range(5000)] + [str(rng.randrange(-10**19, 10**19)) for _ in range(500)]
    strings = pa.array([*texts, None], pa.string())
    regex = pc.match_substring_regex(strings, r"^(0|-?[1-9][0-9]{0,17})$")
    expected = regex.fill_null(False).to_pylist()
    assert sum(expected) > 500 and not all(expected)  # both answers are drawn often
    assert canonical_ints(strings).tolist() == expected
    assert canonical_ints(strings.slice(7, 900)).tolist() == expected[7:907]  # a slice reads its bytes
