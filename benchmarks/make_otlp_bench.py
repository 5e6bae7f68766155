"""Write a synthetic OTLP JSON file (Collector style) for timing the OTLP loader.

Usage::

    .venv/bin/python benchmarks/make_otlp_bench.py OUT.jsonl --spans 1000000

Each line is one ``ExportTraceServiceRequest`` with 100 spans: 10 agent traces of 10 spans
(an ``invoke_agent`` root carrying totals, 5 ``chat`` spans with GenAI usage and a 300-character
prompt attribute, 4 ``execute_tool`` spans), hex ids, string nanosecond timestamps (~1.1 KB a
span). The simulator's OTLP writer makes richer data; this one only needs to be fast to write.
"""

from __future__ import annotations

import argparse
import json

T0 = 1_750_000_000_000_000_000
PROMPT = json.dumps("Please answer the user's question about the weather. " * 6)


def _attr(key: str, value) -> str:
    if isinstance(value, bool):
        return f'{{"key":"{key}","value":{{"boolValue":{"true" if value else "false"}}}}}'
    if isinstance(value, int):
        return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'
    if isinstance(value, float):
        return f'{{"key":"{key}","value":{{"doubleValue":{value}}}}}'
    return f'{{"key":"{key}","value":{{"stringValue":{json.dumps(value)}}}}}'


def _span(trace: str, span: str, parent: str, name: str, start: int, end: int, attrs: list,
          error: bool = False) -> str:
    status = '{"code":2,"message":"boom"}' if error else '{"code":1}'
    return (f'{{"traceId":"{trace}","spanId":"{span}","parentSpanId":"{parent}","name":"{name}",'
            f'"kind":3,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
            f'"attributes":[{",".join(attrs)}],"status":{status}}}')


def _trace(n: int) -> list[str]:
    trace = f"{n + 1:032x}"
    root = f"{n * 16 + 15:016x}"
    start = T0 + n * 60_000_000_000
    spans = [_span(trace, root, "", "invoke_agent bot", start, start + 30_000_000_000, [
        _attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.agent.name", "bot"),
        _attr("gen_ai.usage.input_tokens", 5000), _attr("aiscale.task.id", f"task-{n % 500}"),
        _attr("aiscale.trial", n // 500), _attr("aiscale.outcome.success", n % 3 == 0)])]
    for i in range(9):
        sid = f"{n * 16 + i + 1:016x}"
        begin = start + (i + 1) * 2_000_000_000
        if i % 2 == 0:
            attrs = [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "openai"),
                     _attr("gen_ai.request.model", "gpt-4o"),
                     _attr("gen_ai.response.model", "gpt-4o-2024-08-06"),
                     _attr("gen_ai.usage.input_tokens", 1000 + i),
                     _attr("gen_ai.usage.output_tokens", 100 + i),
                     _attr("gen_ai.usage.cache_read.input_tokens", 500),
                     _attr("gen_ai.request.temperature", 0.2), _attr("gen_ai.prompt", PROMPT)]
            spans.append(_span(trace, sid, root, "chat gpt-4o", begin, begin + 1_500_000_000, attrs))
        else:
            attrs = [_attr("gen_ai.operation.name", "execute_tool"),
                     _attr("gen_ai.tool.name", "get_weather"),
                     _attr("gen_ai.tool.call.arguments", '{"city": "Paris"}')]
            spans.append(_span(trace, sid, root, "execute_tool get_weather", begin,
                               begin + 300_000_000, attrs, error=(n + i) % 50 == 0))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--spans", type=int, default=1_000_000)
    args = parser.parse_args()
    resource = ('{"resource":{"attributes":[' + _attr("service.name", "bench") + "]},"
                '"scopeSpans":[{"scope":{"name":"bench","version":"1"},"spans":[')
    with open(args.out, "w") as out:
        for line in range(args.spans // 100):
            spans = [s for t in range(10) for s in _trace(line * 10 + t)]
            out.write('{"resourceSpans":[' + resource + ",".join(spans) + "]}]}]}\n")


if __name__ == "__main__":
    main()
