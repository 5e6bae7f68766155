"""The DuckDB SQL that flattens OTLP JSON lines into canonical span rows (used by ``otlp``).

Per batch of lines: :func:`fast_parse_query` (``from_json`` with an explicit OTLP schema; a
batch where it raises is parsed again by the tolerant :func:`parse_query`, ``try(from_json)``)
under :func:`flat_query` (three unnests: resourceSpans, scopeSpans, spans); then, after the
attribute look-ups and ids in Arrow, :func:`spans_query` maps each span to the canonical
columns, with the conditions under which it read the attributes of :data:`READS` (whose
positions NumPy finds, :func:`~aiscale.loaders._otlp_attrs.read_positions`); the
``attributes`` JSON of the others is assembled in Arrow
(:mod:`aiscale.loaders._otlp_json`) from :func:`fragments_query`. No Python runs per span. A
span that breaks a loader rule comes out with ``span_bad`` set; lines that gave no span are
explained by :func:`bad_lines_query`. The queries run over Arrow tables by
:func:`aiscale.loaders._otlp_query.in_order`.

Examples
--------
>>> "from_json" in parse_query("blk") and "unnest" in flat_query("p")
True
>>> "try(" in parse_query("blk"), "try(" in fast_parse_query("blk")
(True, False)
"""

from __future__ import annotations

import functools

ANY = ('{"stringValue":"VARCHAR","intValue":"VARCHAR","doubleValue":"VARCHAR",'
       '"boolValue":"VARCHAR","bytesValue":"VARCHAR","arrayValue":"JSON","kvlistValue":"JSON"}')
ATTRS = f'[{{"key":"VARCHAR","value":{ANY}}}]'
SPAN = ('{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","name":"VARCHAR",'
        '"kind":"VARCHAR","startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR",'
        f'"attributes":{ATTRS},"events":"JSON","links":"JSON","traceState":"VARCHAR",'
        '"status":{"code":"VARCHAR","message":"VARCHAR"}}')
REQUEST = ('{"resourceSpans":[{"resource":{"attributes":' + ATTRS + '},"scopeSpans":[{"scope":'
           '{"name":"VARCHAR","version":"VARCHAR","attributes":' + ATTRS + '},"spans":[' + SPAN
           + ']}]}]}')

MIN_NANOS = 631_152_000_000_000_000  # 1990-01-01 in unix nanoseconds: earlier times are in other units

MACROS = f"""
CREATE OR REPLACE MACRO av_text(v) AS
    coalesce(v.stringValue, v.intValue, v.doubleValue, v.boolValue, v.bytesValue);
CREATE OR REPLACE MACRO av_scalar(v) AS CASE
    WHEN v IS NULL THEN 'null'
    WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue)
    WHEN v.intValue IS NOT NULL
        THEN coalesce(CAST(try_cast(v.intValue AS BIGINT) AS VARCHAR), to_json(v.intValue))
    WHEN v.doubleValue IS NOT NULL THEN CASE WHEN isfinite(try_cast(v.doubleValue AS DOUBLE))
        THEN CAST(try_cast(v.doubleValue AS DOUBLE) AS VARCHAR) ELSE to_json(v.doubleValue) END
    WHEN v.boolValue IS NOT NULL
        THEN coalesce(CAST(try_cast(v.boolValue AS BOOLEAN) AS VARCHAR), to_json(v.boolValue))
    WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue)
    WHEN v.arrayValue IS NOT NULL THEN CAST(v.arrayValue AS VARCHAR)
    WHEN v.kvlistValue IS NOT NULL THEN CAST(v.kvlistValue AS VARCHAR)
    ELSE 'null' END;
CREATE OR REPLACE MACRO av_json(v) AS CASE
    WHEN v.arrayValue IS NOT NULL THEN '[' || array_to_string(list_transform(
        from_json(v.arrayValue, '{{"values":[{ANY}]}}').values, lambda e: av_scalar(e)), ',') || ']'
    WHEN v.kvlistValue IS NOT NULL THEN '{{' || array_to_string(list_transform(
        from_json(v.kvlistValue, '{{"values":{ATTRS}}}').values,
        lambda e: to_json(e.key) || ':' || av_scalar(e.value)), ',') || '}}'
    ELSE av_scalar(v) END;
CREATE OR REPLACE MACRO attrs_json(attrs) AS '{{' || array_to_string(list_transform(
    attrs, lambda a: to_json(a.key) || ':' || av_json(a.value)), ',') || '}}';
CREATE OR REPLACE MACRO find_attr(attrs, name) AS
    av_text(list_filter(attrs, lambda a: a.key = name)[1].value);
CREATE OR REPLACE MACRO otel_id(x, nbytes) AS nullif(CASE
    WHEN x IS NULL OR x = '' THEN NULL
    WHEN length(x) = 2 * nbytes AND regexp_full_match(x, '[0-9a-fA-F]+') THEN lower(x)
    WHEN length(x) = 4 * ceil(nbytes / 3) AND octet_length(try(from_base64(x))) = nbytes
        THEN lower(hex(from_base64(x)))
    ELSE x END, repeat('0', 2 * nbytes));
CREATE OR REPLACE MACRO nanos_bad(x, name) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN try_cast(x AS BIGINT) IS NULL THEN name || CASE
        WHEN NOT isfinite(try_cast(x AS DOUBLE)) THEN ' is not a finite number: '
        WHEN try_cast(x AS DOUBLE) > 0
            THEN ' is after 2262-04-11 (beyond int64 unix nanoseconds): '
        WHEN try_cast(x AS DOUBLE) < 0 THEN ' is negative (not a time): '
        ELSE ' is not an integer: ' END || to_json(x)
    WHEN try_cast(x AS BIGINT) <= 0 THEN name || ' is zero or negative (not a time): ' || to_json(x)
    WHEN try_cast(x AS BIGINT) < {MIN_NANOS} THEN name || ' is before 1990 as unix nanoseconds '
        || '(a time in seconds, milliseconds or microseconds?): ' || to_json(x) END;
"""

# Canonical column <- attribute keys, first present wins.
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL = ("gen_ai.response.model", "llm.model_name", "llm.response.model", "gen_ai.request.model",
         "llm.request.model")
TOKENS = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                     "llm.token_count.prompt", "llm.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.token_count.completion", "llm.usage.completion_tokens"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens",
                          "gen_ai.usage.cache_read_input_tokens",
                          "llm.token_count.prompt_details.cache_read"),
    "cache_write_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                           "gen_ai.usage.cache_creation_input_tokens",
                           "llm.token_count.prompt_details.cache_write"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                         "llm.token_count.completion_details.reasoning"),
}
COST = ("llm.cost.total", "gen_ai.usage.cost")
TOOL_NAME = ("gen_ai.tool.name", "tool.name")
TOOL_ARGS = ("gen_ai.tool.call.arguments",)
TOOL_INPUT = ("input.value", "traceloop.entity.input")  # arguments on OpenInference/Traceloop tools
TRACE_KEYS = {"task_id": "aiscale.task.id", "trial": "aiscale.trial",
              "variant": "aiscale.variant", "success": "aiscale.outcome.success",
              "score": "aiscale.outcome.score", "user_id": "user.id", "session_id": "session.id",
              "conversation": "gen_ai.conversation.id", "metadata": "metadata"}
KIND_KEYS = ("openinference.span.kind", "gen_ai.operation.name", "traceloop.span.kind",
             "llm.request.type", "traceloop.entity.name", "llm.cost.prompt", "llm.cost.completion")

OPENINFERENCE_KINDS = {"LLM": "llm", "CHAIN": "chain", "TOOL": "tool", "AGENT": "agent",
                       "RETRIEVER": "retrieval", "RERANKER": "retrieval", "EMBEDDING": "embedding",
                       "GUARDRAIL": "guardrail", "EVALUATOR": "evaluator", "PROMPT": "other",
                       "UNKNOWN": "other"}
OPERATIONS = {"chat": "llm", "text_completion": "llm", "generate_content": "llm",
              "completion": "llm", "embeddings": "embedding", "execute_tool": "tool",
              "invoke_agent": "agent", "create_agent": "agent", "invoke_workflow": "chain",
              "retrieval": "retrieval"}
TRACELOOP_KINDS = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool",
                   "unknown": "other"}
SPAN_KINDS = {str(i): f"SPAN_KIND_{n}" for i, n in enumerate(
    ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))}
REQUEST_TYPES = {"chat": "llm", "completion": "llm", "embedding": "embedding", "rerank": "retrieval"}


def _key_col(key: str) -> str:
    return '"a:' + key + '"'


def _case(expr: str, mapping: dict[str, str], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


def _first(keys: tuple[str, ...]) -> tuple[str, str]:
    """Return (value, chosen key) expressions for the first present key of ``keys``."""
    value = "coalesce(" + ", ".join(_key_col(k) for k in keys) + ")"
    chosen = "CASE " + " ".join(f"WHEN {_key_col(k)} IS NOT NULL THEN '{k}'" for k in keys)
    return value, chosen + " END"


def _kind() -> str:
    oi, op, tl, rt = (_key_col(k) for k in KIND_KEYS[:4])
    model = " OR ".join(f"{_key_col(k)} IS NOT NULL" for k in MODEL)
    usage = " OR ".join(f"{_key_col(k)} IS NOT NULL"
                        for k in TOKENS["input_tokens"] + TOKENS["output_tokens"])
    return (f"CASE WHEN {oi} IS NOT NULL THEN {_case(f'upper({oi})', OPENINFERENCE_KINDS)} "
            f"WHEN {op} IS NOT NULL THEN {_case(f'lower({op})', OPERATIONS, repr('other'))} "
            f"WHEN {tl} IS NOT NULL THEN {_case(f'lower({tl})', TRACELOOP_KINDS)} "
            f"WHEN {rt} IS NOT NULL THEN {_case(f'lower({rt})', REQUEST_TYPES, repr('other'))} "
            f"WHEN ({model}) AND ({usage}) THEN 'llm' ELSE 'other' END")


def _all_keys() -> list[str]:
    keys = [*PROVIDER, *MODEL, *COST, *TOOL_NAME, *TOOL_ARGS, *TOOL_INPUT, *KIND_KEYS, "error.type"]
    keys += [k for group in TOKENS.values() for k in group] + list(TRACE_KEYS.values())
    return list(dict.fromkeys(keys))


def parse_query(table: str) -> str:
    """Return the query parsing each line of ``table`` (line_no, raw BLOB) into ``req``.

    ``req`` is null where the line is not UTF-8, not JSON or not of the OTLP shape; such
    lines give no span, and only the lines that gave none are looked at again, by
    :func:`bad_lines_query`.
    """
    return f"SELECT line_no, try(from_json(try(decode(raw)), '{REQUEST}')) AS req FROM {table}"


def fast_parse_query(table: str) -> str:
    """Return the query parsing each line of ``table`` (line_no, txt VARCHAR, blank BOOLEAN)
    into ``req``, fast.

    No ``try`` and no ``decode``: a line that is not JSON, or not UTF-8 (in a string or out of
    one), makes ``from_json`` raise for the whole batch, which is then parsed again by
    :func:`parse_query`. Nothing but ``from_json`` reads ``txt`` (DuckDB's string functions
    must not see text that may not be UTF-8); ``blank`` marks the lines of only whitespace,
    which give null without an error. Where no line raises, ``req`` is what :func:`parse_query`
    gives: wrong JSON types (an ``intValue`` or a time as a number, a status code as a name, an
    id as an object) do not raise in either, and are read as text or null alike.
    """
    return (f"SELECT line_no, CASE WHEN blank THEN NULL ELSE from_json(txt, '{REQUEST}') END "
            f"AS req FROM {table}")


def flat_query(parsed: str) -> str:
    """Return the query unnesting the parsed requests to one row per span (``sp``).

    Resource-level trace keys, the resource and scope JSON come along on every row.
    """
    trace_keys = ", ".join(f"find_attr(r.resource.attributes, '{k}') AS \"r:{k}\""
                           for k in TRACE_KEYS.values())
    return f"""
WITH l2 AS (SELECT line_no, unnest(req.resourceSpans) AS r FROM {parsed}),
l3 AS (SELECT line_no, {trace_keys}, attrs_json(r.resource.attributes) AS res_json,
        unnest(r.scopeSpans) AS s FROM l2)
SELECT * EXCLUDE (s), to_json({{'name': s.scope.name, 'version': s.scope.version}})
        AS scope_json, attrs_json(s.scope.attributes) AS scope_attrs_json,
        unnest(s.spans) AS sp FROM l3"""


def bad_lines_query(table: str) -> str:
    """Return the query listing the lines in ``table`` that are not OTLP requests, and why.

    Run only on the lines that gave no span (few); blank lines and valid requests without
    spans are not listed.
    """
    blank = "trim(txt, ' ' || chr(9) || chr(10) || chr(13)) = ''"
    return f"""
SELECT line_no, CASE WHEN txt IS NULL THEN 'line is not valid UTF-8'
        WHEN NOT json_valid(txt) THEN 'invalid JSON (truncated or corrupted line)'
        WHEN json_type(txt, '$.resourceSpans') IS DISTINCT FROM 'ARRAY'
        THEN 'not an OTLP ExportTraceServiceRequest (no resourceSpans list)'
        ELSE 'not an OTLP ExportTraceServiceRequest (a field has the wrong JSON type)'
        END AS line_bad
FROM (SELECT line_no, txt, try(from_json(txt, '{REQUEST}')) AS req
      FROM (SELECT line_no, try(decode(raw)) AS txt FROM {table}))
WHERE (req IS NULL OR req.resourceSpans IS NULL) AND (txt IS NULL OR NOT {blank})"""


def fragments_query(table: str) -> str:
    """Return the query writing each attribute of ``table`` (key, value) as ``"key":value``."""
    return f"SELECT to_json(key) || ':' || av_json(value) AS frag FROM {table}"


def int_bad_query(table: str) -> str:
    """Return the query setting ``int_bad`` for each attribute of ``table`` (key, value) whose
    ``intValue`` is not an int64 (beyond its range, or no number)."""
    return ("SELECT CASE WHEN value.intValue IS NOT NULL AND try_cast(value.intValue AS BIGINT) IS "
            "NULL THEN to_json(key) || ' has an intValue that is not an int64: ' || "
            f"to_json(value.intValue) END AS int_bad FROM {table}")


def lookup_keys() -> list[str]:
    """The span attribute keys the mapping reads (looked up by :mod:`._otlp_attrs`)."""
    return _all_keys()


def _mapped(table: str) -> str:
    tokens = [f'{_first(keys)[0]} AS "raw:{column}"' for column, keys in TOKENS.items()]
    pairs = {"provider": PROVIDER, "model": MODEL, "cost": COST, "tool_name": TOOL_NAME,
             "tool_args": TOOL_ARGS}
    firsts = [f'{_first(keys)[0]} AS "{name}"' for name, keys in pairs.items()]
    trace = [f'coalesce({_key_col(k)}, "r:{k}") AS "{name}"' for name, k in TRACE_KEYS.items()]
    tl = _key_col("traceloop.span.kind")
    tool_input = _first(TOOL_INPUT)[0]
    return f"""
m AS (SELECT *, {_kind()} AS kind,
        {", ".join(tokens)}, {", ".join(firsts)}, {", ".join(trace)},
        {tool_input} AS tool_input,
        CASE WHEN lower({tl}) = 'tool' THEN {_key_col("traceloop.entity.name")} END AS tl_tool,
        CASE WHEN {_key_col("llm.cost.prompt")} IS NOT NULL
             AND {_key_col("llm.cost.completion")} IS NOT NULL THEN
             try_cast({_key_col("llm.cost.prompt")} AS DOUBLE)
             + try_cast({_key_col("llm.cost.completion")} AS DOUBLE) END AS cost_parts,
        sp.status.code AS status_code, try_cast(sp.startTimeUnixNano AS BIGINT) AS start_ns,
        nullif(sp.endTimeUnixNano, '0') AS end_raw, try_cast(end_raw AS BIGINT) AS end_ns
      FROM {table})"""


READS = ((None, PROVIDER, True), (None, MODEL, True), (None, TOOL_NAME, True), (None, TOOL_ARGS, True),
         ("use:tool_input", TOOL_INPUT, True), ("use:tl_tool", ("traceloop.entity.name",), False),
         ("error_type", ("error.type",), False), *(("counted", keys, True) for keys in TOKENS.values()),
         ("counted", COST, True), ("use:cost_parts", ("llm.cost.prompt", "llm.cost.completion"), False))
"""The attributes the mapping reads into columns, so not kept in ``attributes``: (where, keys,
first), where: always (None), or where a boolean column of :func:`spans_query` is true (or,
for ``error_type``, not null); first: only the first of ``keys`` with a value is read, else
each of them."""

USE_FLAGS = {
    "use:tool_input": "coalesce(tool_args IS NULL AND kind = 'tool', false)",
    "use:tl_tool": "coalesce(tool_name IS NULL AND tl_tool IS NOT NULL, false)",
    "use:cost_parts": "coalesce(counted AND cost IS NULL AND cost_parts IS NOT NULL, false)",
}
"""The conditions under which the mapping reads the tool input (``TOOL_INPUT``),
``traceloop.entity.name`` and the cost parts (``llm.cost.prompt``, ``llm.cost.completion``):
columns of :func:`spans_query`, beside ``counted`` and ``error_type`` (``error.type`` is
read where it is not null)."""


PASSED = ("line_no", "trace_id", "span_id", "parent_id", "name")
"""Span columns :func:`spans_query` does not write: its input has them as they are (``line_no``,
the ``id:`` columns and ``sp.name``), and their copy out of DuckDB cost ~10 % of the query."""


FIRST_OF = {"provider": tuple(f"a:{k}" for k in PROVIDER), "model": tuple(f"a:{k}" for k in MODEL),
            **{name: (f"a:{TRACE_KEYS[name]}", f"r:{TRACE_KEYS[name]}")
               for name in ("task_id", "variant", "user_id", "metadata")},
            "session_id": tuple(f"{level}:{TRACE_KEYS[name]}" for name in ("session_id", "conversation")
                                for level in ("a", "r"))}
"""Span columns that are the first present of input columns (``a:`` look-ups, ``r:`` resource
keys; a look-up key no span has has no column): :func:`spans_query` writes them as nulls and
the caller takes them in Arrow (``coalesce``, no copy where one column has them all), as its
copy out of DuckDB cost ~25 % of the query."""


def _final() -> str:
    tok = {c: f'"tok:{c}"' for c in TOKENS}
    cache = f"coalesce({tok['cache_read_tokens']}, 0) + coalesce({tok['cache_write_tokens']}, 0)"
    reasoning = f"coalesce({tok['reasoning_tokens']}, 0)"
    fix_in, fix_out = f"{tok['input_tokens']} < {cache}", f"{tok['output_tokens']} < {reasoning}"
    token_bad = " ".join(
        f'WHEN counted AND "raw:{c}" IS NOT NULL AND coalesce("dbl:{c}" <> floor("dbl:{c}"), true) '
        f'THEN {_first(TOKENS[c])[1]} || \' is not an integer: \' || to_json("raw:{c}") '
        f'WHEN counted AND "raw:{c}" IS NOT NULL AND {tok[c]} IS NULL THEN {_first(TOKENS[c])[1]} || '
        f"' is not a finite integer within int64: ' || to_json(\"raw:{c}\")" for c in TOKENS)
    used = ", ".join(f'{expr} AS "{name}"' for name, expr in USE_FLAGS.items()) + ", counted"
    oi, tl = _key_col("openinference.span.kind"), _key_col("traceloop.span.kind")
    kind_problem = (f"CASE WHEN {oi} IS NOT NULL THEN 'unknown openinference.span.kind ' || to_json({oi}) "
                    f"ELSE 'unknown traceloop.span.kind ' || to_json({tl}) END")  # only where kind is null
    events = f'from_json(sp.events, \'[{{"name":"VARCHAR","attributes":{ATTRS}}}]\')'
    named = "(contains(sp.events, 'exception') OR contains(sp.events, '\\u'))"  # or escaped
    doubles = ", ".join(f'try_cast("raw:{c}" AS DOUBLE) AS "dbl:{c}"' for c in TOKENS)
    ints = ", ".join(f'CASE WHEN counted THEN try_cast("dbl:{c}" AS BIGINT) END AS "tok:{c}"'
                     for c in TOKENS)
    return f"""
e AS (SELECT *, coalesce({_key_col("error.type")}, CASE WHEN sp.events IS NOT NULL AND {named}
        THEN find_attr(list_filter({events}, lambda x: x.name = 'exception')[1].attributes,
        'exception.type') END) AS error_type, kind IN ('llm', 'embedding') AS counted,
        try_cast(cost AS DOUBLE) AS cost_number, {doubles} FROM m),
x AS (SELECT *, {ints} FROM e),
f AS (SELECT line_no,
    "id:trace_id" AS trace_id, "id:span_id" AS span_id, "id:parent_id" AS parent_id, kind,
    sp.name AS name,
    start_ns, end_ns,
    CASE WHEN status_code IS NULL OR status_code IN ('0', 'STATUS_CODE_UNSET') THEN 'unset'
         WHEN status_code IN ('1', 'STATUS_CODE_OK') THEN 'ok'
         WHEN status_code IN ('2', 'STATUS_CODE_ERROR') THEN 'error' END AS status,
    error_type, provider, model,
    CASE WHEN {fix_in} THEN {tok['input_tokens']} + {cache} ELSE {tok['input_tokens']} END
        AS input_tokens,
    CASE WHEN {fix_out} THEN {tok['output_tokens']} + {reasoning} ELSE {tok['output_tokens']} END
        AS output_tokens,
    {tok['cache_read_tokens']} AS cache_read_tokens, {tok['cache_write_tokens']} AS cache_write_tokens,
    {tok['reasoning_tokens']} AS reasoning_tokens,
    CASE WHEN counted THEN coalesce(cost_number, cost_parts) END AS reported_cost_usd,
    coalesce(tool_name, tl_tool) AS tool_name,
    coalesce(tool_args, CASE WHEN kind = 'tool' THEN tool_input END) AS tool_arguments,
    {used}, coalesce({fix_in} OR {fix_out}, false) AS tokens_normalised,
    CASE WHEN status IS NULL THEN 'unknown status code ' || to_json(status_code)
         WHEN kind IS NULL THEN {kind_problem} {token_bad}
         WHEN counted AND cost IS NOT NULL AND cost_number IS NULL
             THEN {_first(COST)[1]} || ' is not a number: ' || to_json(cost)
         WHEN sp.startTimeUnixNano IS NOT NULL AND coalesce(start_ns < {MIN_NANOS}, true)
             THEN nanos_bad(sp.startTimeUnixNano, 'startTimeUnixNano')
         WHEN end_raw IS NOT NULL AND coalesce(end_ns < {MIN_NANOS}, true)
             THEN nanos_bad(end_raw, 'endTimeUnixNano')
         WHEN int_bad IS NOT NULL THEN 'attribute ' || int_bad
         END AS span_bad,
    task_id, try_cast(trial AS BIGINT) AS trial, variant, try_cast(success AS BOOLEAN) AS success,
    try_cast(score AS DOUBLE) AS score, user_id, coalesce(session_id, conversation) AS session_id,
    metadata, hash(trace_id, span_id) AS span_hash
  FROM x)"""


def spans_query(table: str, absent: frozenset[str] = frozenset()) -> str:
    """Return the query turning the flat spans in ``table`` (:func:`flat_query` plus the
    ``a:`` look-up columns, ``int_bad`` and the ``id:`` ids, see
    :mod:`aiscale.loaders._otlp_ids`) into canonical span rows: times as unix nanoseconds
    (``start_ns``, ``end_ns``), the :data:`READS` conditions (the :data:`USE_FLAGS` columns
    and ``counted``) and ``tokens_normalised`` in place of the ``attributes`` JSON, which
    :mod:`aiscale.loaders._otlp_json` writes; without the :data:`PASSED` columns, and the
    :data:`FIRST_OF` columns all null.

    The keys in ``absent`` (no span of the block has them) have no columns in ``table``: they
    are written as typed nulls, which DuckDB folds away before it runs the query.
    """
    return _spans_query(table, frozenset(absent))


@functools.lru_cache(maxsize=64)
def _spans_query(table: str, absent: frozenset[str]) -> str:
    nulls = ", ".join(f"NULL::VARCHAR AS {name}" for name in FIRST_OF)
    query = ("WITH " + ",".join([_mapped(table), _final()])
             + f"\nSELECT * EXCLUDE ({', '.join(PASSED)}) REPLACE ({nulls}) FROM f")
    for key in sorted(absent):
        query = query.replace(f'"a:{key}"', "NULL::VARCHAR")
    return query
