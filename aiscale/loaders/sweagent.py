"""SWE-agent v0 trajectories (``<instance_id>.traj``): one trace-facts row per instance, no spans.

Why facts and not spans: a v0 ``.traj`` reports tokens and cost only as per-instance totals
(``info.model_stats``: ``tokens_sent``, ``tokens_received``, ``instance_cost``, ``api_calls``).
Its steps (``trajectory``) carry the action and observation but no per-call usage, cost or
timestamp. LLM spans would either hold null tokens (and the rollup would then lose the
totals) or carry the totals on one made-up span (inventing a split the source does not have),
and their times would be invented. So each file becomes one span-less facts row
(:attr:`Chunk.facts`) with exactly what the file knows:

- ``trace_id`` ``<run folder>~<tag>/<instance_id>`` (``<tag>``: six hex digits of the folder's path), ``task_id`` the instance id, ``variant`` the run
  folder (it names model and settings, e.g. ``gpt4__..._t-0.00__p-0.95__c-3.00__install-1``);
- ``n_llm_calls`` = ``iterations`` = ``api_calls``; ``input_tokens`` = ``tokens_sent``,
  ``output_tokens`` = ``tokens_received`` (GPT-4 era: no cache or reasoning counts, so those
  stay null), ``reported_cost_usd`` = ``instance_cost``;
- ``n_tool_calls`` = executed steps, ``repeated_calls`` = steps whose action text was already
  issued in this instance, ``tool_latency_s`` = the sum of ``execution_time`` when every step has one;
- ``success`` stays null: the label lives in a separate harness report;
- latency, aiscale's own cost and error counts stay null (unknown).

Rows: one per file (an unreadable file is one quarantined row).

Examples
--------
>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x__y-1.traj"
>>> _ = path.write_text(json.dumps({"environment": "e", "trajectory": [{"action": "ls"}, {"action": "ls"}],
...     "info": {"model_stats": {"api_calls": 2, "tokens_sent": 9, "tokens_received": 3,
...                              "instance_cost": 0.1}}}))
>>> row = next(read(path)).facts.iloc[0]
>>> int(row["iterations"]), int(row["input_tokens"]), int(row["repeated_calls"])
(2, 9, 1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from aiscale.loaders._common import as_float, as_int, bad_record, frame, head_text, read_document
from aiscale.loaders.base import Chunk, folder_tag, json_text, uncompressed_path
from aiscale.schema import FACT_COLUMNS

NAME = "swe-agent-v0"
READS_GZIP = True  # a gzip-compressed file is read as it is
PRIORITY = 30
_HEAD = re.compile(r'^\{\s*"environment"\s*:\s*"[^"]*"\s*,\s*"trajectory"\s*:\s*\[')


def sniff(path: Path, head: bytes) -> bool:
    """A ``.traj`` JSON object with a ``trajectory`` list (SWE-agent v0 writes ``environment`` first)."""
    text = head_text(head)
    if _HEAD.match(text):
        return True
    return path.suffix == ".traj" and text.startswith("{") and '"trajectory"' in text


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk holding the instance's facts row (or its quarantine row)."""
    path = Path(path)
    document, problem = read_document(path)
    if problem is not None or not isinstance(document, dict):
        yield Chunk(quarantined=[problem or bad_record(path, None, "expected a JSON object")],
                    rows_read=1, unit="trajectory")
        return
    try:
        row = _facts_row(path, document)
    except (TypeError, ValueError) as exc:
        yield Chunk(quarantined=[bad_record(path, None, f"unreadable trajectory: {exc}")],
                    rows_read=1, unit="trajectory")
        return
    facts = frame([row], FACT_COLUMNS).assign(source_file=str(path), source_row=1)
    yield Chunk(facts=facts, rows_read=1, unit="trajectory")


def _stat(stats: dict, key: str, kind: type) -> int | float | None:
    value = stats.get(key)
    converted = as_int(value) if kind is int else as_float(value)
    if value is not None and converted is None:
        raise TypeError(f"`model_stats.{key}` must be a {kind.__name__}, but {value!r} was found")
    return converted


def _cost(stats: dict) -> float | None:
    cost = _stat(stats, "instance_cost", float)
    return cost if cost is not None else _stat(stats, "total_cost", float)


def _facts_row(path: Path, document: dict) -> dict:
    steps = document.get("trajectory")
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise TypeError("`trajectory` must be a list of step objects")
    info = document.get("info")
    stats = info.get("model_stats") if isinstance(info, dict) else None
    if not isinstance(stats, dict):
        raise TypeError("`info.model_stats` is missing")
    actions = [str(s.get("action", "")).strip() for s in steps]
    times = [as_float(s.get("execution_time")) for s in steps]
    run, instance = path.parent.name, uncompressed_path(path).name.removesuffix(".traj")
    calls = _stat(stats, "api_calls", int)
    metadata = {"source": NAME, "run": run, "model": run.split("__", 1)[0],
                "exit_status": info.get("exit_status"), "environment": document.get("environment"),
                **_caps(document, run),
                "note": "per-instance totals only: no per-call usage, cost or timestamps"}
    return {"trace_id": f"{run}~{folder_tag(path.parent)}/{instance}", "task_id": instance, "trial": 0, "variant": run,
            "metadata": json_text(metadata), "n_llm_calls": calls, "iterations": calls,
            "n_tool_calls": len(steps), "input_tokens": _stat(stats, "tokens_sent", int),
            "output_tokens": _stat(stats, "tokens_received", int),
            "reported_cost_usd": _cost(stats),
            "tool_latency_s": sum(times) if steps and None not in times else None,
            "repeated_calls": len(actions) - len(set(actions))}


_COST_IN_RUN_NAME = re.compile(r"__c-(\d+(?:\.\d+)?)__")


def _caps(document: dict, run: str) -> dict:
    """The run's limits: ``step_cap`` from ``per_instance_call_limit`` (0 means none), and
    ``cost_cap_usd`` from ``per_instance_cost_limit`` or the run name's ``__c-3.00__``.

    SWE-agent v0 stops an instance on cost, not on steps: its step cap is unknown (not
    written), and ``exit_status`` ``exit_cost`` says the cost cap cut the instance short.

    Examples
    --------
    >>> _caps({}, "gpt4__dev__default__t-0.00__p-0.95__c-3.00__install-1")
    {'cost_cap_usd': 3.0}
    """
    config = document.get("replay_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    agent = config.get("agent") if isinstance(config, dict) else None
    model = agent.get("model") if isinstance(agent, dict) else None
    model = model if isinstance(model, dict) else {}
    caps = {}
    calls = as_int(model.get("per_instance_call_limit"))
    if calls:
        caps["step_cap"] = calls
    cost = as_float(model.get("per_instance_cost_limit"))
    named = _COST_IN_RUN_NAME.search(run)
    if not cost and named:
        cost = float(named.group(1))
    if cost:
        caps["cost_cap_usd"] = cost
    return caps
