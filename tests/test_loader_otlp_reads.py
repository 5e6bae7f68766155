"""The attributes the OTLP mapping reads into columns are the ones left out of ``attributes``.

Spans drawn at random with the keys of every rule of ``READS`` (each key group in shuffled
order, keys repeated, values scalar or not, the tool input, ``traceloop.entity.name``,
``error.type`` and the cost parts with and without the conditions that make them read) are
loaded; a span's ``attributes`` must hold exactly its attributes (in order, repeats too) less
the ones a rule read, as worked out here span by span from the rules as the loader documents
them and the span's mapped columns (kind, tool name, error type).
"""

from __future__ import annotations

import json
import random

from aiscale.loaders import otlp
from aiscale.loaders._otlp_sql import (
    COST,
    MODEL,
    PROVIDER,
    TOKENS,
    TOOL_ARGS,
    TOOL_INPUT,
    TOOL_NAME,
)

GROUPS = (PROVIDER, MODEL, TOOL_NAME, TOOL_ARGS, *TOKENS.values(), COST)
SCALAR = ("stringValue", "intValue", "doubleValue", "boolValue", "bytesValue")


def _value(rng: random.Random, key: str) -> dict:
    if rng.random() < 0.15:  # no scalar: the key is there, its value is not read
        return {"arrayValue": {"values": [{"stringValue": "x"}]}}
    if key in ("llm.cost.prompt", "llm.cost.completion"):  # a part that is no number: not read
        return {"intValue": str(rng.randrange(1, 99))} if rng.random() < 0.8 else {"stringValue": "n/a"}
    if "tokens" in key or "token_count" in key or "cost" in key:  # (no number would be quarantined)
        return {"intValue": str(rng.randrange(1, 99))}
    if key == "traceloop.span.kind":
        return {"stringValue": rng.choice(["tool", "TOOL", "workflow", "task"])}
    return {"stringValue": rng.choice(["a", "b", "tool", "chat"])}


def _span(rng: random.Random, n: int) -> dict:
    keys = [k for group in GROUPS for k in group if rng.random() < 0.3]
    keys += [k for k in (*TOOL_INPUT, "traceloop.span.kind", "traceloop.entity.name", "error.type",
                         "llm.cost.prompt", "llm.cost.completion", "other.key") if rng.random() < 0.4]
    keys += rng.sample(keys, min(len(keys), rng.randrange(3)))  # repeats: the first is the one read
    rng.shuffle(keys)
    kind = rng.choice(["chat", "execute_tool", "invoke_agent", "embeddings", None])
    if kind:
        keys.insert(0, "gen_ai.operation.name")
    attrs = [{"key": k, "value": {"stringValue": kind} if k == "gen_ai.operation.name" and i == 0
              else _value(rng, k)} for i, k in enumerate(keys)]
    return {"traceId": f"{n // 3 + 1:032x}", "spanId": f"{n + 1:016x}", "name": "s",
            "startTimeUnixNano": "1750000000000000000", "attributes": attrs}


def _read(attrs: list[dict], row: dict) -> set[int]:
    """The 0-based positions of ``attrs`` the mapping reads, by the rules, for mapped ``row``."""
    first, text = {}, {}
    for i, a in enumerate(attrs):
        first.setdefault(a["key"], i)
    for key, i in first.items():
        value = attrs[i]["value"]
        text[key] = next((value[f] for f in SCALAR if f in value), None)

    def chosen(keys: tuple[str, ...]) -> int | None:
        return next((first[k] for k in keys if text.get(k) is not None), None)

    counted = row["kind"] in ("llm", "embedding")
    read = [chosen(g) for g in (PROVIDER, MODEL, TOOL_NAME, TOOL_ARGS)]
    read += [chosen(g) for g in (*TOKENS.values(), COST)] if counted else []
    if chosen(TOOL_ARGS) is None and row["kind"] == "tool":
        read.append(chosen(TOOL_INPUT))
    tl_tool = str(text.get("traceloop.span.kind")).lower() == "tool" and text.get("traceloop.entity.name")
    if chosen(TOOL_NAME) is None and tl_tool:
        read.append(first["traceloop.entity.name"])
    if row["error_type"] is not None:
        read.append(first.get("error.type"))
    parts = [text.get(k) for k in ("llm.cost.prompt", "llm.cost.completion")]
    if counted and chosen(COST) is None and all(p is not None and p.isdigit() for p in parts):
        read += [first["llm.cost.prompt"], first["llm.cost.completion"]]
    return {i for i in read if i is not None}


def test_the_attributes_read_into_columns_are_left_out_and_no_other(tmp_path):
    rng = random.Random(3)
    spans = [_span(rng, n) for n in range(600)]
    everything = {"key": "all", "value": {"intValue": "1"}}  # every key has a value in the block
    spans[0]["attributes"] += [{**everything, "key": k} for g in GROUPS for k in g] + [
        {**everything, "key": k} for k in (*TOOL_INPUT, "traceloop.entity.name", "error.type")]
    path = tmp_path / "reads.jsonl"
    path.write_text("".join(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans[at:at + 50]}]}]})
                            + "\n" for at in range(0, len(spans), 50)))
    rows, why = {}, []
    for chunk in otlp.read(path):
        rows.update((r["span_id"], r) for r in chunk.span_table.to_pylist())
        why += [q.reason for q in chunk.quarantined]
    assert not why
    assert len(rows) == len(spans)
    seen = set()
    for span in spans:
        row, attrs = rows[span["spanId"]], span["attributes"]
        read = _read(attrs, row)
        seen.update((row["kind"], len(read) > 0))
        kept = [a["key"] for i, a in enumerate(attrs) if i not in read]
        members = json.loads(row["attributes"], object_pairs_hook=list)
        assert [k for k, _ in members if not k.startswith(("otel.", "aiscale."))] == kept, span["spanId"]
    assert {"llm", "tool", "embedding", "agent", True, False} <= seen  # the rules were exercised
