"""Inspect AI eval logs (``.eval`` zip or ``.json``): one trace per (sample, epoch).

A ``.eval`` log is a zip (read with the standard library's :mod:`zipfile`; no inspect_ai
needed) holding ``header.json`` (the eval spec, plan, results; ``_journal/start.json`` when
the run was cut short) and ``samples/<id>_epoch_<n>.json``; a ``.json`` log is one object
with ``eval``, ``results`` and ``samples``. Each sample record becomes the trace
``<eval_id>/<sample id>/<epoch>`` with:

- ``task_id`` = the sample id, ``trial`` = the epoch, ``variant`` = ``"<model> (<task>)"``;
- ``score`` from the log's first scorer (``C`` = 1, ``I`` = 0, ``P`` = 0.5, ``N`` = 0,
  booleans, numbers) and ``success = score >= SUCCESS_THRESHOLD`` (1.0: full credit), so the
  per-variant success rate is the log's own ``accuracy`` for ``C``/``I`` scorers; a score that
  cannot be read (a dict of values) leaves both null;
- a root ``agent`` span over the sample's events; ``limit`` (message, token, time, ...) and
  ``error`` make it an ``error`` span (``error_type`` ``limit:<type>`` or the error message);
- an ``llm`` span per ``model`` event, from its ``timestamp`` to ``completed`` (else plus its
  ``working_time``, or in older logs its output's ``time``). Calls made inside a scorer
  (model-graded scorers) sit under an ``evaluator`` span. Provider and model come from ``provider/model``;
- a ``tool`` span per ``tool`` event (``function``, ``arguments`` as JSON text, its error).

Token conventions differ by provider (see the data's SOURCE.md): OpenAI's
``output_tokens`` includes ``reasoning_tokens`` but Google's does not; Anthropic's
``input_tokens`` excludes the cache reads and writes. Each call's ``total_tokens`` decides
which reading holds (the provider's usual one first; see
:func:`aiscale.loaders._inspect_events.canonical_usage`), and the canonical columns are
written accordingly: input with cache, output with reasoning. A sample without model
events gets one LLM span per model of its ``model_usage``.

Rows are spans; an unreadable sample or log is one quarantined row.

Examples
--------
>>> score_value("C"), score_value("I"), score_value(0.25)
(1.0, 0.0, 0.25)
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._common import (
    as_float,
    as_int,
    bad_record,
    frame,
    head_text,
    naive_as_utc,
    read_document,
)
from aiscale.loaders._inspect_events import sample_spans
from aiscale.loaders.base import Chunk, Quarantined, folder_tag, json_text
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "inspect"
PRIORITY = 30
SUCCESS_THRESHOLD = 1.0
CHUNK_SAMPLES = 50
_LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def sniff(path: Path, head: bytes) -> bool:
    """A zip named ``*.eval``, or a JSON log object with ``version``, ``status`` and ``eval``."""
    if path.suffix == ".eval":
        return head.startswith(b"PK")
    text = head_text(head)
    start = text[:400]
    return text.startswith("{") and '"version"' in start and '"status"' in start and '"eval"' in start


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield the samples of an Inspect log as span and trace rows, a chunk per 50 samples."""
    path = Path(path)
    if path.suffix == ".eval":
        yield from _read_eval(path)
        return
    document, problem = read_document(path)
    if not isinstance(document, dict) or not isinstance(document.get("eval"), dict):
        yield Chunk(quarantined=[problem or bad_record(path, None, "expected an Inspect log with `eval`")],
                    rows_read=1)
        return
    samples = document.get("samples") if isinstance(document.get("samples"), list) else []
    log = _Log(path, document)
    for start in range(0, len(samples), CHUNK_SAMPLES):
        yield log.chunk([(f"samples[{i}]", i + 1, s) for i, s in
                         enumerate(samples[start:start + CHUNK_SAMPLES], start=start)])
    if problem is not None:
        yield Chunk(quarantined=[problem], rows_read=1)


def _read_eval(path: Path) -> Iterator[Chunk]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Chunk(quarantined=[bad_record(path, None, f"not a readable .eval zip: {exc}")], rows_read=1)
        return
    with archive:
        names = archive.namelist()
        header_name = "header.json" if "header.json" in names else "_journal/start.json"
        header = _zip_json(archive, header_name) if header_name in names else None
        if not isinstance(header, dict) or not isinstance(header.get("eval"), dict):
            yield Chunk(quarantined=[bad_record(path, None, "no readable header.json or _journal/start.json")],
                        rows_read=1)
            return
        log = _Log(path, header)
        members = sorted((n for n in names if n.startswith("samples/") and n.endswith(".json")), key=_sample_key)
        for start in range(0, len(members), CHUNK_SAMPLES):
            part = members[start:start + CHUNK_SAMPLES]
            yield log.chunk([(name, row, _zip_json(archive, name))
                             for row, name in enumerate(part, start=start + 1)])


def _sample_key(name: str) -> tuple:
    stem = name.removeprefix("samples/").removesuffix(".json")
    sample, _, epoch = stem.rpartition("_epoch_")
    return (int(epoch) if epoch.isdigit() else 0, int(sample) if sample.isdigit() else 0, stem)


def _zip_json(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name).decode("utf-8"))
    except (ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
        return Quarantined("", None, f"{name}: unreadable JSON ({exc})")


class _Log:
    """The eval-level facts every sample of one log shares."""

    def __init__(self, path: Path, header: dict) -> None:
        self.path = path
        spec = header["eval"]
        self.task = spec.get("task")
        self.model = spec.get("model")
        self.eval_id = (spec.get("eval_id") or spec.get("run_id") or spec.get("task_id")
                        or f"{path.stem}~{folder_tag(path.parent)}")
        results = header.get("results") if isinstance(header.get("results"), dict) else {}
        scores = results.get("scores") if isinstance(results.get("scores"), list) else []
        self.scorer = next((s.get("name") for s in scores if isinstance(s, dict) and s.get("name")), None)
        self.meta = {"source": NAME, "task": self.task, "eval_id": self.eval_id, "log_status": header.get("status"),
                     "scorer": self.scorer, "success_threshold": SUCCESS_THRESHOLD,
                     "inspect_ai": (spec.get("packages") or {}).get("inspect_ai")}

    def chunk(self, samples: list[tuple[str, int, Any]]) -> Chunk:
        spans: list[dict] = []
        traces, bad = [], []
        for name, row, sample in samples:
            if isinstance(sample, Quarantined) or not isinstance(sample, dict) or "id" not in sample:
                reason = sample.reason if isinstance(sample, Quarantined) else f"{name}: not a sample object with an `id`"
                bad.append(bad_record(self.path, row, reason))
                continue
            try:
                sample_span_rows, trace = self._sample(sample, row)
            except (TypeError, ValueError) as exc:
                bad.append(bad_record(self.path, row, f"{name}: unreadable sample ({exc})"))
                continue
            spans += sample_span_rows
            traces.append(trace)
        return Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame(traces, TRACE_COLUMNS), quarantined=bad,
                     rows_read=len(spans) + len(bad), unit="span")

    def _sample(self, sample: dict, row: int) -> tuple[list[dict], dict]:
        epoch = as_int(sample.get("epoch")) or 1
        trace_id = f"{self.eval_id}/{sample['id']}/{epoch}"
        spans = sample_spans(sample, trace_id, self.task)
        for span in spans:
            span.update(source=NAME, source_file=str(self.path), source_row=row)
        value, raw = self._score(sample.get("scores"))
        started = naive_as_utc(sample.get("started_at")) or spans[0]["start_time"]
        metadata = {**self.meta, "score_value": raw, "model_usage": sample.get("model_usage"),
                    "total_time_s": sample.get("total_time"), "working_time_s": sample.get("working_time"),
                    "limit": sample.get("limit"), "error": _error_text(sample.get("error"))}
        return spans, {"trace_id": trace_id, "task_id": str(sample["id"]), "trial": epoch,
                       "variant": f"{self.model} ({self.task})" if self.task else self.model,
                       "started_at": started, "score": value,
                       "success": None if value is None else value >= SUCCESS_THRESHOLD,
                       "metadata": json_text({k: v for k, v in metadata.items() if v is not None})}

    def _score(self, scores: Any) -> tuple[float | None, Any]:
        if not isinstance(scores, dict) or not scores:
            return None, None
        score = scores.get(self.scorer) if self.scorer in scores else next(iter(scores.values()))
        raw = score.get("value") if isinstance(score, dict) else score
        return score_value(raw), raw


def score_value(value: Any) -> float | None:
    """An Inspect score value as a number: C/I/P/N letters, booleans, numbers; else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        letter = _LETTERS.get(value.strip().upper())
        if letter is not None:
            return letter
        try:
            return float(value)
        except ValueError:
            return None
    return as_float(value)


def _error_text(error: Any) -> str | None:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("traceback") or "")[:500] or "error"
    return None if error is None else str(error)[:500]
