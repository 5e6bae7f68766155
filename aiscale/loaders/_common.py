"""Helpers shared by the benchmark loaders (tau-bench, tau2, mini-swe-agent, SWE-agent, leaderboard).

Not a loader itself (the leading underscore keeps it out of the registry).

Examples
--------
>>> value, problem = salvage_json('[{"a": 1}, {"a": 2}, {"a"')
>>> value, problem is not None
([{'a': 1}, {'a': 2}], True)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiscale.loaders.base import Quarantined, excerpt, open_binary

if TYPE_CHECKING:
    import pandas as pd

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


def _skip(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()


def _salvage_array(text: str, pos: int) -> list:
    """Complete elements of the array starting at ``text[pos] == '['`` before the break."""
    items: list = []
    pos = _skip(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            return items
        items.append(value)
        pos = _skip(text, pos)
        if text[pos:pos + 1] != ",":
            return items
        pos = _skip(text, pos + 1)
    return items


def _salvage_object(text: str, pos: int) -> dict:
    """Complete members of the object at ``pos``; a broken array member keeps its complete elements."""
    members: dict = {}
    pos = _skip(text, pos + 1)
    while text[pos:pos + 1] == '"':
        try:
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text[pos:pos + 1] != ":":
                return members
            pos = _skip(text, pos + 1)
            members[key], pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            if text[pos:pos + 1] == "[":
                members[key] = _salvage_array(text, pos)
            return members
        pos = _skip(text, pos)
        if text[pos:pos + 1] != ",":
            return members
        pos = _skip(text, pos + 1)
    return members


class KeyedDict(dict):
    """A JSON object that had repeated keys: the first value is kept, the rest in ``duplicates``."""

    duplicates: list[tuple[str, Any]]


def keep_first_key(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook`` that keeps the first of repeated keys and remembers the others.

    Examples
    --------
    >>> value = json.loads('{"a": 1, "a": 2}', object_pairs_hook=keep_first_key)
    >>> value, value.duplicates
    ({'a': 1}, [('a', 2)])
    """
    out: dict = {}
    repeated = []
    for key, value in pairs:
        if key in out:
            repeated.append((key, value))
        else:
            out[key] = value
    if not repeated:
        return out
    keyed = KeyedDict(out)
    keyed.duplicates = repeated
    return keyed


def salvage_json(text: str, object_pairs_hook: Any = None) -> tuple[Any, str | None]:
    """Parse a JSON document; when it is truncated or broken, keep what parsed completely.

    Returns ``(value, problem)``: ``problem`` is None for a valid document, else the parser's
    message (line and column). ``value`` is then the complete elements of a top-level array,
    or the complete members of a top-level object (an array member cut short keeps its
    complete elements), or None when nothing could be kept. Values nested too deep for the
    parser are cut out (:func:`aiscale.loaders._bounded.loads_bounded`).
    """
    value, problem, _ = _salvage(text, object_pairs_hook)
    return value, problem


def _salvage(text: str, object_pairs_hook: Any = None) -> tuple[Any, str | None, bool]:
    from aiscale.loaders._bounded import loads_bounded

    try:
        value, cut = loads_bounded(text, object_pairs_hook=object_pairs_hook)
        return value, None, cut
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON (truncated or edited?): {exc.msg} at line {exc.lineno} column {exc.colno}"
    start = _skip(text, 0)
    if text[start:start + 1] == "[":
        return _salvage_array(text, start), problem, False
    if text[start:start + 1] == "{":
        return _salvage_object(text, start), problem, False
    return None, problem, False


def read_document(path: Path, object_pairs_hook: Any = None) -> tuple[Any, Quarantined | None]:
    """Read a JSON file with :func:`salvage_json`; the problem, if any, as a Quarantined row."""
    value, problem, _ = read_document_bounded(path, object_pairs_hook)
    return value, problem


def read_document_bounded(path: Path, object_pairs_hook: Any = None) -> tuple[Any, Quarantined | None, bool]:
    """:func:`read_document` (gzip read transparently) that also says whether too-deep values were cut out.

    A cut value is the text :data:`aiscale.loaders._bounded.CUT`; a loader quarantines the
    records holding one (:func:`aiscale.loaders._bounded.holds_cut`).
    """
    try:
        with open_binary(path) as handle:
            text = handle.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Quarantined(str(path), None, f"file is not valid UTF-8 ({exc.reason})"), False
    if not text.strip():
        return None, Quarantined(str(path), None, "file is empty"), False
    value, problem, cut = _salvage(text, object_pairs_hook)
    if problem is None:
        return value, None, cut
    return value, Quarantined(str(path), None, problem + "; the records after this point are lost",
                              excerpt(text[-200:])), cut


def head_text(head: bytes) -> str:
    """Decode a sniffing head leniently (it may end inside a multi-byte character)."""
    return head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")


def bad_record(path: Path, row: int | None, reason: str, record: Any = "") -> Quarantined:
    """A Quarantined row for a record the loader could not use."""
    return Quarantined(str(path), row, reason, excerpt(record) if record != "" else "")


def frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A DataFrame of ``rows`` (None when there are none), with every column present."""
    import pandas as pd

    if not rows:
        return None
    return pd.DataFrame.from_records(rows, columns=list(columns))


def unix_to_timestamp(value: Any) -> pd.Timestamp | None:
    """Unix seconds (int or float) to a UTC timestamp; anything else to None."""
    import pandas as pd

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return pd.Timestamp(value, unit="s", tz="UTC")


def naive_as_utc(value: Any) -> pd.Timestamp | None:
    """An ISO 8601 text (naive ones read as UTC) to a UTC timestamp; unreadable to None."""
    import pandas as pd

    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def as_int(value: Any) -> int | None:
    """A non-boolean integer (or integral float) as int, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A non-boolean number as float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
