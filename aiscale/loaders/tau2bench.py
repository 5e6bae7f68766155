"""tau2-bench Results JSON (``tau2 run``): one trace per simulation, agent and user simulator kept apart.

The file is one object: ``info`` (agent and user-simulator LLMs, domain), ``tasks`` and
``simulations``. Each simulation becomes a trace ``<file stem>/<simulation id>``:

- a root ``agent`` span from ``start_time`` to ``end_time`` (latency = the simulation's duration);
- an ``llm`` span per assistant message (every turn after the greeting is a call of the model,
  whether or not its usage was recorded; without usage its tokens and cost are null and the
  span's attributes say ``usage_missing``): tokens from ``usage`` (``prompt_tokens`` already includes cached input;
  Anthropic cache reads and writes from the raw response's usage), ``reported_cost_usd`` from
  ``cost``, model from the raw response else ``info.agent_info.llm``; it runs from the previous
  message's timestamp to its own; ``errors`` on the message make it an error span. The summed
  agent cost of a simulation therefore equals its ``agent_cost``;
- the fixed greeting (an assistant message before any user message, with no usage, no response
  and no cost) is an ``other`` span, not an LLM call;
- every user-simulator message is an ``other`` span named ``user_simulator`` whose usage, cost
  and model stay in ``attributes``: its tokens and cost are not the agent's;
- a ``tool`` span per tool call (``tool_arguments`` = the arguments as JSON text), from the
  requesting message's timestamp to the tool result's; a result with ``error: true`` is an error.
  Tool calls made by the user simulator (telecom) are ``other`` spans.

Timestamps in these files are naive local times: they are read as UTC, and the trace metadata
says so (``timestamps``). The run's ``max_steps`` is the metadata's ``step_cap`` (it counts
messages of the agent, the user and tools). ``success`` is ``reward == 1``; the termination reason, user cost and
the source's own agent cost go to the metadata. Local models (``ollama``) report cost 0: it is
kept as reported and the metadata notes it.

Rows are spans (a simulation that cannot be read counts as one quarantined row).

Examples
--------
>>> import json, tempfile, pathlib
>>> sim = {"id": "s1", "task_id": "3", "trial": 0, "start_time": "2025-01-01T10:00:00",
...     "end_time": "2025-01-01T10:00:09", "reward_info": {"reward": 1.0}, "agent_cost": 0.5,
...     "messages": [{"role": "assistant", "timestamp": "2025-01-01T10:00:04", "cost": 0.5,
...                   "usage": {"prompt_tokens": 10, "completion_tokens": 2}}]}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "r.json"
>>> _ = path.write_text(json.dumps({"info": {"agent_info": {"llm": "m"}, "user_info": {}},
...                                 "simulations": [sim]}))
>>> chunk = next(read(path))
>>> chunk.spans[["kind", "reported_cost_usd"]].dropna().values.tolist()
[['llm', 0.5]]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._bounded import holds_cut
from aiscale.loaders._common import (
    as_float,
    as_int,
    bad_record,
    frame,
    head_text,
    naive_as_utc,
    read_document_bounded,
)
from aiscale.loaders._tau2_messages import message_spans
from aiscale.loaders.base import TOO_DEEP, Chunk, export_stem, json_text
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "tau2-bench"
PRIORITY = 30
READS_GZIP = True
CHUNK_SIMULATIONS = 25
TIMESTAMP_NOTE = "naive local time in the source, read as UTC"


class _BadSimulation(ValueError):
    """A simulation that cannot be used; the message is the quarantine reason."""


def sniff(path: Path, head: bytes) -> bool:
    """A JSON object whose ``info`` names an ``agent_info`` and a ``user_info`` (or has ``simulations``)."""
    text = head_text(head)
    if not text.startswith("{"):
        return False
    return ('"agent_info"' in text and '"user_info"' in text) or '"simulations"' in text[:4096]


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield the simulations of a tau2 Results file as span and trace rows."""
    path = Path(path)
    document, problem, cut = read_document_bounded(path)
    simulations = document.get("simulations") if isinstance(document, dict) else None
    if not isinstance(simulations, list):
        reason = problem or bad_record(path, None, "expected an object with a `simulations` list")
        yield Chunk(quarantined=[reason], rows_read=1)
        return
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    seen: set[str] = set()
    for start in range(0, len(simulations), CHUNK_SIMULATIONS):
        yield _chunk(path, info, simulations, start, seen, cut)
    if problem is not None:
        yield Chunk(quarantined=[problem], rows_read=1)


def _chunk(path: Path, info: dict, simulations: list, start: int, seen: set[str], cut: bool = False) -> Chunk:
    spans: list[dict] = []
    traces: list[dict] = []
    bad = []
    for row in range(start + 1, min(start + CHUNK_SIMULATIONS, len(simulations)) + 1):
        simulation = simulations[row - 1]
        try:
            if cut and holds_cut(simulation):  # nested too deep for the parser: cut out, not read
                raise _BadSimulation(TOO_DEEP)
            sim_spans, trace = _simulation(path, info, simulation)
            if trace["trace_id"] in seen:
                raise _BadSimulation(f"duplicate simulation id {trace['trace_id']!r}")
        except (_BadSimulation, ValueError, TypeError) as exc:
            bad.append(bad_record(path, row, f"simulation {row}: {exc}", simulation))
            continue
        seen.add(trace["trace_id"])
        for span in sim_spans:
            span.update(source=NAME, source_file=str(path), source_row=row)
        spans += sim_spans
        traces.append(trace)
    return Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame(traces, TRACE_COLUMNS),
                 quarantined=bad, rows_read=len(spans) + len(bad), unit="span")


def _llm_name(info: dict, role: str) -> str | None:
    part = info.get(f"{role}_info")
    llm = part.get("llm") if isinstance(part, dict) else None
    return llm if isinstance(llm, str) else None


def _simulation(path: Path, info: dict, simulation: Any) -> tuple[list[dict], dict]:
    if not isinstance(simulation, dict):
        raise _BadSimulation(f"a simulation must be an object, but a {type(simulation).__name__} was found")
    sim_id, task_id = simulation.get("id"), simulation.get("task_id")
    if not isinstance(sim_id, str) or not sim_id or not isinstance(task_id, (str, int)):
        raise _BadSimulation("`id` (text) and `task_id` are required")
    messages = simulation.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _BadSimulation("`messages` must be a list of message objects")
    trace_id = f"{export_stem(path)}/{sim_id}"
    agent_llm, user_llm = _llm_name(info, "agent"), _llm_name(info, "user")
    start, end = naive_as_utc(simulation.get("start_time")), naive_as_utc(simulation.get("end_time"))
    root = {"trace_id": trace_id, "span_id": "agent", "kind": "agent", "name": "tau2 agent",
            "start_time": start, "end_time": end, "status": "unset",
            "attributes": json_text({"duration_s": simulation.get("duration")})}
    spans = [root, *message_spans(messages, trace_id, start, agent_llm, user_llm)]
    return spans, _trace(simulation, info, trace_id, start, agent_llm, user_llm)


def _trace(simulation: dict, info: dict, trace_id: str, start: Any, agent_llm: str | None,
           user_llm: str | None) -> dict:
    reward_info = simulation.get("reward_info")
    reward = as_float(reward_info.get("reward")) if isinstance(reward_info, dict) else None
    environment = info.get("environment_info") if isinstance(info.get("environment_info"), dict) else {}
    domain = environment.get("domain_name")
    local = isinstance(agent_llm, str) and agent_llm.startswith("ollama")
    metadata = {
        "source": NAME, "domain": domain, "termination_reason": simulation.get("termination_reason"),
        "agent_cost_usd": simulation.get("agent_cost"), "user_cost_usd": simulation.get("user_cost"),
        "user_simulator_llm": user_llm, "duration_s": simulation.get("duration"),
        "timestamps": TIMESTAMP_NOTE, "seed": simulation.get("seed"),
        "git_commit": info.get("git_commit"),
        "cost_note": "local model: the source reports cost 0" if local else None,
        "step_cap": as_int(info.get("max_steps")),
        "step_cap_counts": "messages (agent, user and tool)" if info.get("max_steps") is not None else None,
    }
    task_id = simulation.get("task_id")
    return {"trace_id": trace_id, "task_id": f"{domain}/{task_id}" if domain else str(task_id),
            "trial": as_int(simulation.get("trial")), "variant": agent_llm, "started_at": start,
            "success": None if reward is None else reward == 1.0, "score": reward,
            "metadata": json_text({k: v for k, v in metadata.items() if v is not None})}
