"""SWE-bench leaderboard (``leaderboards.json``): per-instance cost, calls and resolved as trace facts.

The file is ``{"leaderboards": [{"name": ..., "results": [run, ...]}, ...]}``. Every run with
``per_instance_details`` is a variant (its ``folder``); each of its instances becomes one
span-less facts row (:attr:`Chunk.facts`): ``trace_id`` ``<folder>~<tag>/<instance_id>`` (``<tag>``:
six hex digits of the file's path, so two leaderboard files never merge), ``task_id``
the instance id, ``iterations`` = ``n_llm_calls`` = ``api_calls``, ``reported_cost_usd`` =
``cost``, ``success`` = ``resolved``. Tokens, latency and aiscale's own cost stay null.

The same runs appear under several boards ("bash-only" and again under "Verified"): a run
(``folder``) is loaded once, from the first board that lists it. Each row's metadata keeps
the run's published figures (``resolved`` %, total ``cost``, mean ``instance_calls``), its
boards, model tag and agent version, and ``labels_match_published``: false when the
per-instance ``resolved`` flags do not reproduce the published resolved % (to 0.005 points);
the source documents three such runs (claude-3-7-sonnet, claude-sonnet-4, Llama-4-Maverick).

Rows: one per instance (an unreadable instance entry or run is one quarantined row).

Examples
--------
>>> import json, tempfile, pathlib
>>> import pandas as pd
>>> run = {"folder": "r1", "resolved": 50.0, "cost": 3.0, "instance_calls": 2.0,
...        "per_instance_details": {"a": {"api_calls": 1, "cost": 1.0, "resolved": True},
...                                 "b": {"api_calls": 3, "cost": 2.0, "resolved": False}}}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "leaderboards.json"
>>> _ = path.write_text(json.dumps({"leaderboards": [{"name": "x", "results": [run]},
...                                                  {"name": "y", "results": [run]}]}))
>>> facts = pd.concat([c.facts for c in read(path)])
>>> [t.split("/")[1] for t in facts["trace_id"]], facts["iterations"].tolist()
(['a', 'b'], [1, 3])
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiscale.loaders._common import (
    as_float,
    as_int,
    bad_record,
    frame,
    head_text,
    keep_first_key,
    read_document,
)
from aiscale.loaders.base import Chunk, folder_tag, json_text, uncompressed_path
from aiscale.schema import FACT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

NAME = "swebench-leaderboard"
READS_GZIP = True  # a gzip-compressed file is read as it is
PRIORITY = 30
LABEL_TOLERANCE_PCT = 0.005
_HEAD = re.compile(r'^\{\s*"leaderboards"\s*:\s*\[')


def sniff(path: Path, head: bytes) -> bool:
    """A JSON object that starts with a ``leaderboards`` list."""
    return bool(_HEAD.match(head_text(head)))


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk of facts rows per run that has ``per_instance_details``."""
    path = Path(path)
    document, problem = read_document(path, keep_first_key)
    boards = document.get("leaderboards") if isinstance(document, dict) else None
    if problem is not None or not isinstance(boards, list):
        yield Chunk(quarantined=[problem or bad_record(path, None, "expected a `leaderboards` list")],
                    rows_read=1, unit="row")
        return
    runs = _runs(boards)
    for number, (run, board_names) in enumerate(runs.values(), start=1):
        yield _run_chunk(path, number, run, board_names)


def _runs(boards: list) -> dict[str, tuple[dict, list[str]]]:
    """Runs with per-instance details by folder, first occurrence kept, with every board listing it."""
    runs: dict[str, tuple[dict, list[str]]] = {}
    for board in boards:
        if not isinstance(board, dict) or not isinstance(board.get("results"), list):
            continue
        for run in board["results"]:
            if not isinstance(run, dict) or "per_instance_details" not in run:
                continue
            folder = str(run.get("folder") or run.get("name"))
            runs.setdefault(folder, (run, []))[1].append(str(board.get("name")))
    return runs


def _run_chunk(path: Path, number: int, run: dict, board_names: list[str]) -> Chunk:
    folder = str(run.get("folder") or run.get("name"))
    details = run.get("per_instance_details")
    if not isinstance(details, dict):
        bad = bad_record(path, number, f"run {folder!r}: `per_instance_details` must be an object")
        return Chunk(quarantined=[bad], rows_read=1, unit="row")
    rows, bad = [], []
    for instance_id, entry in details.items():
        try:
            rows.append(_row(folder, instance_id, entry, folder_tag(uncompressed_path(path))))
        except TypeError as exc:
            bad.append(bad_record(path, number, f"run {folder!r}, instance {instance_id!r}: {exc}", entry))
    for instance_id, entry in getattr(details, "duplicates", []):
        bad.append(bad_record(path, number, f"run {folder!r}: duplicate instance id {instance_id!r} in "
                              "`per_instance_details` (the first entry is kept)", entry))
    facts = frame(rows, FACT_COLUMNS)
    if facts is not None:
        facts["metadata"] = json_text(_run_metadata(run, board_names, facts))
        facts["source_file"], facts["source_row"] = str(path), number
    return Chunk(facts=facts, quarantined=bad, rows_read=len(rows) + len(bad), unit="row")


def _row(folder: str, instance_id: str, entry: Any, tag: str) -> dict:
    if not isinstance(entry, dict):
        raise TypeError("an instance entry must be an object")
    calls, cost, resolved = as_int(entry.get("api_calls")), as_float(entry.get("cost")), entry.get("resolved")
    for name, value, ok in (("api_calls", entry.get("api_calls"), calls is not None),
                            ("cost", entry.get("cost"), cost is not None),
                            ("resolved", resolved, isinstance(resolved, bool))):
        if value is not None and not ok:
            raise TypeError(f"`{name}` has the wrong type ({value!r})")
    return {"trace_id": f"{folder}~{tag}/{instance_id}", "task_id": instance_id, "trial": 0, "variant": folder,
            "success": resolved, "iterations": calls, "n_llm_calls": calls, "reported_cost_usd": cost}


def _run_metadata(run: dict, board_names: list[str], facts: pd.DataFrame) -> dict:
    published = as_float(_number(run.get("resolved")))
    recomputed = 100 * facts["success"].astype("boolean").mean() if facts["success"].notna().any() else None
    match = None
    if published is not None and recomputed is not None:
        match = bool(abs(published - recomputed) <= LABEL_TOLERANCE_PCT)
    tags = run.get("tags") if isinstance(run.get("tags"), list) else []
    model = next((t.split(":", 1)[1].strip() for t in tags if str(t).startswith("Model:")), None)
    return {"source": NAME, "run": run.get("folder"), "run_name": run.get("name"), "date": run.get("date"),
            "boards": board_names, "model": model, "agent_version": run.get("mini-swe-agent_version"),
            "published_resolved_pct": published, "published_cost_usd": _number(run.get("cost")),
            "published_instance_calls": _number(run.get("instance_calls")),
            "per_instance_resolved_pct": None if recomputed is None else round(float(recomputed), 6),
            "labels_match_published": match}


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return as_float(value)
