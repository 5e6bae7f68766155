"""The span rules of :mod:`aiscale.loaders.validate`, on an Arrow table already in the span schema.

A loader that hands the store Arrow (:class:`~aiscale.loaders.base.ArrowChunk`) has its spans
checked here, without pandas: the same rules, in the same order, with the same words, and the
same rows quarantined as :func:`~aiscale.loaders.validate.validate_spans` would. The table is
typed (:data:`aiscale.schema.SPANS`), so the rules about text that is no time or no number
cannot be broken and are not run. Masks are Arrow compute and NumPy; only the few broken rows
become Python objects.

Examples
--------
>>> import pyarrow as pa
>>> from aiscale import schema
>>> spans = schema.conform_table(pa.table({"trace_id": ["t", "t", "t"], "span_id": ["a", " ", "a"],
...     "kind": ["llm"] * 3, "status": ["ok"] * 3, "source_file": ["f"] * 3, "source_row": [1, 2, 3]}),
...     "spans")
>>> good, bad = validate_span_table(spans)
>>> good.num_rows, [(q.source_row, q.reason) for q in bad]
(1, [(2, 'missing span_id'), (3, 'duplicate span_id within the trace (an earlier row has it)')])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders.base import Quarantined
from aiscale.loaders.validate import MAX_ID_CHARS, MAX_TOKENS_PER_SPAN, cycle_members, lost_call
from aiscale.schema import SPAN_KINDS, SPAN_STATUSES, TOKEN_COLUMNS

DUPLICATE = "duplicate span_id within the trace (an earlier row has it)"
CYCLE = "span is on a parent cycle (its ancestors lead back to it)"


def validate_span_table(spans: pa.Table) -> tuple[pa.Table, list[Quarantined]]:
    """Split a span table into usable rows and quarantined rows, as ``validate_spans`` does.

    Parameters
    ----------
    spans : pyarrow.Table
        Span rows with the schema :data:`aiscale.schema.SPANS`.

    Returns
    -------
    (pyarrow.Table, list of Quarantined)
        The rows that break no rule (in their order), and one record per row that does
        (the first rule it breaks; rule-breakers first, then repeats, then cycle members).
    """
    good, bad = _split(spans, _rules(spans))
    codes = _Codes(good)
    good, repeats = _split(good, [(DUPLICATE, _duplicated(codes))], lost=False)
    if repeats:  # the rows left, numbered again
        codes = _Codes(good)
    good, cycles = _split(good, [(CYCLE, _on_parent_cycle(good, codes))])
    return good, bad + repeats + cycles


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False), dtype=bool)


def missing_ids(ids: pa.ChunkedArray) -> np.ndarray:
    """Null or only whitespace (Python's ``str.strip`` decides, for the few ids with no
    visible ASCII character; only ids that do not start with one are searched for one)."""
    missing = np.asarray(pc.is_null(ids), dtype=bool)
    maybe = np.flatnonzero(~_starts_visible(ids) & ~missing)
    if len(maybe):
        blank = _mask(pc.match_substring_regex(pc.take(ids, pa.array(maybe, pa.int64())), r"^[^\x21-\x7e]*$"))
        maybe = maybe[blank]
    for at, text in zip(maybe, pc.take(ids, pa.array(maybe, pa.int64())).to_pylist(), strict=True):
        missing[at] = text.strip() == ""
    return missing


def _starts_visible(ids: pa.ChunkedArray) -> np.ndarray:
    """Whether each text starts with a visible ASCII character (! to ~), from its first byte."""
    if ids.type != pa.string():  # other layouts: every text is searched
        return np.zeros(len(ids), dtype=bool)
    out = []
    for chunk in ids.chunks:
        offsets = np.frombuffer(chunk.buffers()[1], np.int32, len(chunk) + 1, chunk.offset * 4)
        data = chunk.buffers()[2]
        data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        filled = offsets[1:] > offsets[:-1]
        first = np.zeros(len(chunk), np.uint8)
        first[filled] = data[offsets[:-1][filled]]
        out.append((first >= 0x21) & (first <= 0x7E))
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _rules(spans: pa.Table) -> list[tuple[str, np.ndarray | None]]:
    """Each rule's words and the rows breaking it (None: no row does, known from the column's
    range or byte lengths without a mask per row)."""
    rules = []
    for column in ("trace_id", "span_id"):
        ids = spans.column(column)
        rules.append((f"missing {column}", missing_ids(ids)))
        longest = pc.max(pc.binary_length(ids)).as_py()  # characters are never more than bytes
        rules.append((f"{column} longer than {MAX_ID_CHARS} characters",
                      None if longest is None or longest <= MAX_ID_CHARS
                      else _mask(pc.greater(pc.utf8_length(ids), MAX_ID_CHARS))))
    kinds, statuses = pa.array(SPAN_KINDS), pa.array(SPAN_STATUSES)
    rules.append((f"kind is not one of {list(SPAN_KINDS)}",
                  ~_mask(pc.is_in(spans.column("kind"), value_set=kinds))))
    status = spans.column("status")
    rules.append((f"status is not one of {list(SPAN_STATUSES)}",
                  _mask(pc.is_valid(status)) & ~_mask(pc.is_in(status, value_set=statuses))))
    rules.append(("end_time before start_time",
                  _mask(pc.less(spans.column("end_time"), spans.column("start_time")))))
    for column in TOKEN_COLUMNS:
        values, fine = spans.column(column), _within(spans.column(column), MAX_TOKENS_PER_SPAN)
        rules.append((f"{column} is negative", None if fine else _mask(pc.less(values, 0))))
        rules.append((f"{column} is absurd (over {MAX_TOKENS_PER_SPAN:,} in one span)",
                      None if fine else _mask(pc.greater(values, MAX_TOKENS_PER_SPAN))))
    cost, fine = spans.column("reported_cost_usd"), _within(spans.column("reported_cost_usd"), np.finfo(float).max)
    rules.append(("reported_cost_usd is negative", None if fine else _mask(pc.less(cost, 0))))
    rules.append(("reported_cost_usd is not finite", None if fine else _mask(pc.equal(cost, np.inf))))
    rules.append(("span is its own parent",
                  _mask(pc.equal(spans.column("parent_id"), spans.column("span_id")))))
    return rules


def _within(values: pa.ChunkedArray, high: float) -> bool:
    """Whether every known value is in [0, high]: one pass for the range instead of two masks.

    False when unsure (a NaN, say): the rules' masks then decide row by row.
    """
    low, top = pc.min_max(values).values()
    low, top = low.as_py(), top.as_py()
    return low is None or (low >= 0 and top <= high)


def _split(spans: pa.Table, rules: list[tuple[str, np.ndarray | None]], *,
           lost: bool = True) -> tuple[pa.Table, list[Quarantined]]:
    """Rows that break no rule, and a Quarantined per row that does (the first rule it breaks)."""
    rules = [(text, mask) for text, mask in rules if mask is not None]
    broken = np.zeros(spans.num_rows, dtype=bool)
    for _, mask in rules:
        broken |= mask
    if not broken.any():  # the common case: no copy of the table
        return spans, []
    at = np.flatnonzero(broken)
    reasons = np.full(len(at), None, dtype=object)
    for text, mask in reversed(rules):  # the first rule broken wins
        reasons[mask[at]] = text
    rows = spans.take(pa.array(at, pa.int64())).select(
        ["source_file", "source_row", "trace_id", "kind"]).to_pylist()
    quarantined = [Quarantined(str(row["source_file"] or ""), row["source_row"], why,
                               **lost_call(row) if lost else {})
                   for row, why in zip(rows, reasons, strict=True)]
    return spans.filter(pa.array(~broken)), quarantined


def _codes(*columns: pa.ChunkedArray) -> np.ndarray:
    """One integer per distinct text over ``columns`` together (-1 for null), concatenated.

    The texts are joined into one array first: encoding the chunks one by one and joining
    their dictionaries after took ~0.25 instead of ~0.17 CPU-s per 1 M spans (span and parent ids).
    """
    chunks = [chunk for column in columns for chunk in column.chunks]
    encoded = pc.dictionary_encode(pa.chunked_array(chunks, pa.string()).combine_chunks())
    return np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)


class _Codes:
    """A table's (trace_id, span_id) and (trace_id, parent_id) as integer keys, and the span
    keys' stable sort: made once for both the repeat and the cycle rule."""

    def __init__(self, spans: pa.Table):
        n = self.n = spans.num_rows
        trace = _codes(spans.column("trace_id"))
        ids = _codes(spans.column("span_id"), spans.column("parent_id"))  # one numbering for both
        width = int(ids.max()) + 2 if n else 1
        self.keys = trace * width + ids[:n]
        self.parents = np.where(ids[n:] < 0, -1, trace * width + ids[n:])
        self.order = np.argsort(self.keys, kind="stable")
        self.sorted = self.keys[self.order]


def _duplicated(codes: _Codes) -> np.ndarray:
    """Rows whose (trace_id, span_id) an earlier row has (both are present by now)."""
    first = codes.order[np.r_[True, codes.sorted[1:] != codes.sorted[:-1]]] if codes.n else codes.order
    repeated = np.ones(codes.n, dtype=bool)
    repeated[first] = False
    return repeated


def _on_parent_cycle(spans: pa.Table, codes: _Codes) -> np.ndarray:
    """Rows whose parent chain returns to themselves, as ``on_parent_cycle`` finds them."""
    n = spans.num_rows
    if n == 0 or spans.column("parent_id").null_count == n:
        return np.zeros(n, dtype=bool)
    parents, order = codes.parents, codes.order
    at = np.minimum(np.searchsorted(codes.sorted, parents), n - 1)
    step = np.where((parents >= 0) & (codes.sorted[at] == parents), order[at], -1)
    return cycle_members(step)
