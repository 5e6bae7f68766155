"""Invalid records for the fuzz tests: one corruption applied to one record of a generated file.

``corrupt(fmt, written, kind, index)`` rewrites the files of ``written`` (from
:mod:`fuzzkit`) with record ``index`` corrupted by ``kind`` and returns the files to load.
``MUST_QUARANTINE[fmt]`` lists the kinds that format must quarantine (the others must
load without error, with the odd value kept or mapped as the loader documents).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fuzzkit import Written

KINDS = ("wrong_type", "missing_id", "negative_tokens", "absurd_tokens", "end_before_start",
         "unknown_enum", "deep_nested", "huge_attribute", "non_utf8", "duplicate_id", "parent_cycle")
DEEP = 300  # levels of nesting: deeper than json's default recursion in many tools
HUGE = "x" * (1 << 20)


def nested(depth: int = DEEP) -> dict:
    value: dict = {"leaf": "<b>deep</b>"}
    for _ in range(depth):
        value = {"n": value}
    return value


# -- where each JSON-lines format keeps its fields -------------------------------------------
def _otlp_span(record: dict) -> dict:
    return record["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


def _otlp_set_attr(record: dict, key: str, value: dict) -> None:
    attrs = _otlp_span(record)["attributes"]
    attrs[:] = [a for a in attrs if a["key"] != key] + [{"key": key, "value": value}]


LINE_FIELDS = {  # id, parent, token, start, end, kind, kind value that is no kind
    "phoenix": ("context.span_id", "parent_id", "attributes.llm.token_count.prompt", "start_time",
                "end_time", "status_code", "MAYBE"),
    "langsmith": ("id", "parent_run_id", "prompt_tokens", "start_time", "end_time", "status", "exploded"),
    "langfuse": ("id", "parent_observation_id", None, "start_time", "end_time", "level", "PANIC"),
}


def _is_llm(fmt: str, record: dict) -> bool:
    if fmt == "otlp":
        return any(a["value"].get("stringValue") == "chat" for a in _otlp_span(record)["attributes"])
    return {"phoenix": "span_kind", "langsmith": "run_type", "langfuse": "type"}[fmt] in record and \
        record[{"phoenix": "span_kind", "langsmith": "run_type", "langfuse": "type"}[fmt]] in (
            "LLM", "llm", "GENERATION")


def _set_tokens(fmt: str, record: dict, value) -> None:
    if fmt == "otlp":
        _otlp_set_attr(record, "gen_ai.usage.input_tokens",
                       {"intValue": str(value)} if isinstance(value, int) else {"stringValue": str(value)})
    elif fmt == "langfuse":
        record["usage_details"] = {**(record.get("usage_details") or {}), "input": value}
    else:
        record[LINE_FIELDS[fmt][2]] = value


def _mutate_line(fmt: str, records: list, kind: str, i: int) -> list:
    records = copy.deepcopy(records)
    llm = [n for n, r in enumerate(records) if _is_llm(fmt, r)]
    if kind in ("wrong_type", "negative_tokens", "absurd_tokens"):
        i = llm[i % len(llm)]
        value = {"wrong_type": "many", "negative_tokens": -5, "absurd_tokens": 10**15}[kind]
        _set_tokens(fmt, records[i], value)
        return records
    record = records[i]
    span = _otlp_span(record) if fmt == "otlp" else record
    fields = LINE_FIELDS.get(fmt, ("spanId", "parentSpanId", None, "startTimeUnixNano", "endTimeUnixNano",
                                   "status", None))
    if kind == "missing_id":
        span.pop(fields[0])
    elif kind == "end_before_start":
        span[fields[3]], span[fields[4]] = span[fields[4]], span[fields[3]]
    elif kind == "unknown_enum":
        span[fields[5]] = {"code": "STATUS_CODE_MAYBE"} if fmt == "otlp" else fields[6]
    elif kind in ("deep_nested", "huge_attribute"):
        value = nested() if kind == "deep_nested" else HUGE
        if fmt == "otlp":
            _otlp_set_attr(record, "fuzz.extra", {"stringValue": json.dumps(value)})
        else:
            record["attributes.fuzz" if fmt == "phoenix" else "metadata"] = value
    elif kind == "duplicate_id":
        records.insert(i + 1, copy.deepcopy(record))
    elif kind == "parent_cycle":  # the root's parent becomes its own child: root <-> child
        child = next(r for r in records[i + 1:] + records[:i]
                     if (_otlp_span(r) if fmt == "otlp" else r).get(fields[1])
                     == span[fields[0]] and _same_trace(fmt, r, record))
        span[fields[1]] = (_otlp_span(child) if fmt == "otlp" else child)[fields[0]]
    return records


def _same_trace(fmt: str, a: dict, b: dict) -> bool:
    key = {"phoenix": "context.trace_id", "otlp": None}.get(fmt, "trace_id")
    if fmt == "otlp":
        return _otlp_span(a)["traceId"] == _otlp_span(b)["traceId"]
    return a.get(key) == b.get(key)


def _write_lines(path: Path, records: list, bad_line: int | None = None) -> None:
    lines = [json.dumps(r).encode() for r in records]
    if bad_line is not None:  # a Latin-1 byte in the middle of a string: not UTF-8
        lines[bad_line] = lines[bad_line].replace(b'"', b'"\xe9', 2)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _root_index(fmt: str, records: list, i: int) -> int:
    """The first root record at or after ``i`` (roots have children to make a cycle with)."""
    fields = LINE_FIELDS.get(fmt, (None, "parentSpanId"))
    roots = [n for n, r in enumerate(records)
             if not (_otlp_span(r) if fmt == "otlp" else r).get(fields[1])]
    return next((n for n in roots if n >= i), roots[0])


def corrupt(fmt: str, written: Written, kind: str, index: int) -> list[Path]:
    """Rewrite ``written``'s files with one record corrupted; return the files to load."""
    if fmt == "canonical":
        return _corrupt_canonical(written, kind, index)
    if fmt in ("phoenix", "langsmith", "langfuse", "otlp"):
        path, records = written.files[0], written.records
        i = index % len(records)
        if kind == "parent_cycle":
            i = _root_index(fmt, records, i)
        if kind == "non_utf8":
            _write_lines(path, records, bad_line=i)
        else:
            _write_lines(path, _mutate_line(fmt, records, kind, i))
        return [path]
    return DOCUMENT_CORRUPTORS[fmt](written, kind, index)


# -- canonical Parquet --------------------------------------------------------------------------
def _corrupt_canonical(written: Written, kind: str, index: int) -> list[Path]:
    frame = pd.DataFrame(written.records)
    i = index % len(frame)
    llm = frame.index[frame["kind"] == "llm"]
    j = llm[index % len(llm)]
    if kind == "wrong_type":
        frame["input_tokens"] = frame["input_tokens"].astype(object)
        frame.loc[j, "input_tokens"] = "many"
        frame["input_tokens"] = frame["input_tokens"].map(lambda v: None if pd.isna(v) else str(v))
    elif kind == "missing_id":
        frame.loc[i, "span_id"] = None
    elif kind in ("negative_tokens", "absurd_tokens"):
        frame.loc[j, "input_tokens"] = -5 if kind == "negative_tokens" else 10**15
    elif kind == "end_before_start":
        frame.loc[i, ["start_time", "end_time"]] = frame.loc[i, ["end_time", "start_time"]].to_numpy()
    elif kind == "unknown_enum":
        frame.loc[i, "kind"] = "banana"
    elif kind in ("deep_nested", "huge_attribute"):
        frame["attributes"] = None
        frame.loc[i, "attributes"] = json.dumps(nested()) if kind == "deep_nested" else HUGE
    elif kind == "non_utf8":  # Parquet strings are UTF-8 by contract; a bad byte string column
        frame["fuzz_bytes"] = [b"\xe9\xff" if n == i else b"ok" for n in range(len(frame))]
    elif kind == "duplicate_id":
        frame = pd.concat([frame, frame.iloc[[i]]], ignore_index=True)
    elif kind == "parent_cycle":
        root = frame.index[frame["parent_id"].isna()][index % int(frame["parent_id"].isna().sum())]
        child = frame.index[(frame["parent_id"] == frame.loc[root, "span_id"])
                            & (frame["trace_id"] == frame.loc[root, "trace_id"])][0]
        frame.loc[root, "parent_id"] = frame.loc[child, "span_id"]
    path = written.files[0]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return list(written.files)


# -- whole-document formats ---------------------------------------------------------------------
def _doc_mutation(record: dict, kind: str, token_path: list, id_key: str | None) -> dict | list | str:
    record = copy.deepcopy(record)
    if kind in ("wrong_type", "negative_tokens", "absurd_tokens") and token_path:
        target = record
        for key in token_path[:-1]:
            target = target[key]
        target[token_path[-1]] = {"wrong_type": "many", "negative_tokens": -5, "absurd_tokens": 10**15}[kind]
    elif kind == "missing_id" and id_key:
        record.pop(id_key, None)
    elif kind == "unknown_enum":
        record["role_of_record"] = "banana"
        for message in record.get("messages", record.get("traj", [])):
            if message.get("role") == "assistant":
                message["role"] = "wizard"
                break
    elif kind == "deep_nested":
        record["fuzz"] = nested()
    elif kind == "huge_attribute":
        record["fuzz"] = HUGE
    elif kind == "end_before_start" and "start_time" in record:
        record["start_time"], record["end_time"] = record["end_time"], record["start_time"]
    return record


def _dump(path: Path, document, kind: str) -> None:
    raw = json.dumps(document).encode()
    if kind == "non_utf8":
        raw = raw.replace(b'"', b'"\xe9', 3)
    path.write_bytes(raw)


def _corrupt_list_file(written: Written, kind: str, index: int, token_path, id_key, wrap) -> list[Path]:
    records = list(written.records)
    i = index % len(records)
    if kind == "duplicate_id":
        records.insert(i + 1, copy.deepcopy(records[i]))
    else:
        records[i] = _doc_mutation(records[i], kind, token_path, id_key)
    _dump(written.files[0], wrap(records), kind)
    return list(written.files)


def _corrupt_taubench(written: Written, kind: str, index: int) -> list[Path]:
    return _corrupt_list_file(written, kind, index, None, "task_id", lambda r: r)


def _corrupt_tau2(written: Written, kind: str, index: int) -> list[Path]:
    i = index % len(written.records)
    first = next(n for n, m in enumerate(written.records[i]["messages"]) if m["role"] == "assistant")
    wrap = lambda sims: {"info": {"agent_info": {"llm": "gpt-4o"}, "user_info": {"llm": "u"}},  # noqa: E731
                         "tasks": [], "simulations": sims}
    return _corrupt_list_file(written, kind, i, ["messages", first, "usage", "prompt_tokens"], "id", wrap)


def _corrupt_per_file(written: Written, kind: str, index: int, token_path) -> list[Path]:
    i = index % len(written.files)
    files = list(written.files)
    if kind == "duplicate_id":  # the same trajectory (other bytes) in a copy of its run folder
        depth = 3 if files[i].name.endswith(".traj.json") else 1  # run/trajs/id/x or run/x
        root = files[i].parents[depth + 1]
        copy_path = root / "copy" / files[i].relative_to(root)
        copy_path.parent.mkdir(parents=True, exist_ok=True)
        copy_path.write_bytes(files[i].read_bytes() + b"\n")
        return files + [copy_path]
    _dump(files[i], _doc_mutation(written.records[i], kind, token_path, None), kind)
    return files


def _corrupt_miniswe(written: Written, kind: str, index: int) -> list[Path]:
    return _corrupt_per_file(written, kind, index, ["messages", 2, "extra", "response", "usage",
                                                    "prompt_tokens"])


def _corrupt_sweagent(written: Written, kind: str, index: int) -> list[Path]:
    return _corrupt_per_file(written, kind, index, ["info", "model_stats", "tokens_sent"])


def _corrupt_leaderboard(written: Written, kind: str, index: int) -> list[Path]:
    path = written.files[0]
    board = json.loads(path.read_text())
    details = board["leaderboards"][0]["results"][0]["per_instance_details"]
    key = sorted(details)[index % len(details)]
    if kind == "duplicate_id":  # a JSON object with the same key twice
        raw = json.dumps(board)
        entry = json.dumps({key: details[key]})[1:-1]
        raw = raw.replace('"per_instance_details": {', '"per_instance_details": {' + entry + ", ", 1)
        path.write_text(raw)
        return [path]
    details[key] = _doc_mutation(details[key], kind, ["api_calls"], None)
    _dump(path, board, kind)
    return [path]


def _corrupt_claude_code(written: Written, kind: str, index: int) -> list[Path]:
    """One line of one session file corrupted (token corruptions hit every line of the call)."""
    i = index % len(written.files)
    lines = copy.deepcopy(written.records[i])
    calls = [n for n, line in enumerate(lines) if line["type"] == "assistant"]
    j = calls[index % len(calls)]
    if kind in ("wrong_type", "negative_tokens", "absurd_tokens"):
        value = {"wrong_type": "many", "negative_tokens": -5, "absurd_tokens": 10**15}[kind]
        for line in lines:
            if line["type"] == "assistant" and line["message"]["id"] == lines[j]["message"]["id"]:
                line["message"]["usage"]["input_tokens"] = value
    elif kind == "missing_id":
        lines[j]["message"].pop("id")
    elif kind == "end_before_start":
        lines[j]["timestamp"] = "2025-04-30T00:00:00Z"
    elif kind == "unknown_enum":
        lines[j]["type"] = "banana"
    elif kind in ("deep_nested", "huge_attribute"):
        lines[j]["message"]["content"][0]["fuzz"] = nested() if kind == "deep_nested" else HUGE
    elif kind == "duplicate_id":
        lines.insert(j + 1, copy.deepcopy(lines[j]))
    elif kind == "parent_cycle":
        lines[0]["parentUuid"] = lines[1]["uuid"]
    _write_lines(written.files[i], lines, bad_line=j if kind == "non_utf8" else None)
    return list(written.files)


DOCUMENT_CORRUPTORS = {"tau-bench": _corrupt_taubench, "tau2-bench": _corrupt_tau2,
                       "mini-swe-agent": _corrupt_miniswe, "swe-agent-v0": _corrupt_sweagent,
                       "swebench-leaderboard": _corrupt_leaderboard,
                       "claude-code": _corrupt_claude_code}

_LINE = {"wrong_type", "missing_id", "negative_tokens", "absurd_tokens", "end_before_start",
         "non_utf8", "duplicate_id", "parent_cycle"}
#: the same record in two files is stored twice and counted once (it is not an error)
# a copy of a run in another folder is another run (its ids carry the folder's tag): kept apart
COUNTED_TWICE = {"mini-swe-agent", "swe-agent-v0"}
MUST_QUARANTINE = {
    "canonical": _LINE - {"non_utf8"} | {"unknown_enum"},  # Parquet text is UTF-8 by contract
    "phoenix": _LINE - {"wrong_type"},  # a non-numeric count: see test notes
    "langsmith": _LINE - {"wrong_type"},
    "langfuse": _LINE - {"wrong_type", "negative_tokens", "absurd_tokens"},
    "otlp": _LINE | {"unknown_enum"},
    "tau-bench": {"missing_id", "non_utf8", "duplicate_id"},
    "tau2-bench": {"wrong_type", "missing_id", "negative_tokens", "absurd_tokens", "non_utf8",
                   "duplicate_id"},
    "mini-swe-agent": {"wrong_type", "negative_tokens", "absurd_tokens", "non_utf8"},
    "swe-agent-v0": {"wrong_type", "negative_tokens", "absurd_tokens", "non_utf8"},
    "swebench-leaderboard": {"wrong_type", "negative_tokens", "absurd_tokens", "non_utf8",
                             "duplicate_id"},
    "claude-code": {"wrong_type", "missing_id", "negative_tokens", "absurd_tokens", "non_utf8"},
}
