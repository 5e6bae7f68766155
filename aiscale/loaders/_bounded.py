"""Nesting depth of JSON text, measured without parsing (parsers recurse and can overflow).

Not a loader (the leading underscore keeps it out of the registry). Depth counts the
objects and arrays open at a byte; brackets inside strings do not count. Used where a parse
fails or could fail on depth: JSON lines with at least :data:`~aiscale.loaders.base.MAX_DEPTH`
brackets are measured (deeper ones are quarantined); a whole document whose parse raised
:class:`RecursionError` has its values below that depth cut out and replaced by :data:`CUT`,
so the rest of the document loads and the records holding a cut are quarantined.

Examples
--------
>>> max_depth(b'{"a": [1, {"b": "[[[["}]}')
3
>>> value, cut = loads_bounded('[{"ok": 1}, ' + '[' * 5000 + ']' * 5000 + ']')
>>> cut, value[0], holds_cut(value[1])
(True, {'ok': 1}, True)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from aiscale.loaders.base import MAX_DEPTH

CUT = f"\x00aiscale: a value nested deeper than {MAX_DEPTH} levels was cut out here\x00"
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = (ord(c) for c in "{}\"\\")


def depth_profile(data: bytes | memoryview) -> np.ndarray:
    """Depth after each byte of a JSON text (strings' contents do not count)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if not len(raw):
        return np.zeros(0, dtype=np.int64)
    index = np.arange(len(raw))
    not_backslash = np.where(raw != _BACKSLASH, index, -1)
    last_plain = np.maximum.accumulate(not_backslash)  # last byte at or before i that is not '\'
    quotes = np.flatnonzero(raw == _QUOTE)
    run = quotes - 1 - np.where(quotes > 0, last_plain[np.maximum(quotes - 1, 0)], -1)
    real = quotes[run % 2 == 0]  # a quote after an even run of backslashes is not escaped
    toggles = np.zeros(len(raw), dtype=np.int8)
    toggles[real] = 1
    inside = (np.cumsum(toggles) % 2).astype(bool) & (toggles == 0)  # the quotes themselves are outside
    folded = raw | 32  # '[' -> '{' and ']' -> '}'
    step = (folded == _OPEN).astype(np.int64) - (folded == _CLOSE)
    step[inside] = 0
    return np.cumsum(step)


def max_depth(data: bytes | memoryview) -> int:
    """The deepest nesting of objects and arrays in a JSON text."""
    profile = depth_profile(data)
    return int(profile.max()) if len(profile) else 0


def cut_too_deep(text: str, limit: int = MAX_DEPTH) -> str:
    """``text`` with every value that opens at depth ``limit`` replaced by the string :data:`CUT`."""
    data = text.encode("utf-8")
    profile = depth_profile(data)
    raw = np.frombuffer(data, dtype=np.uint8) | 32
    opens = np.flatnonzero((raw == _OPEN) & (profile == limit) & (np.r_[0, profile[:-1]] == limit - 1))
    pieces, position = [], 0
    for start in opens:
        if start < position:
            continue
        after = np.flatnonzero(profile[start:] < limit)
        end = start + (after[0] + 1 if len(after) else len(profile) - start)
        pieces += [data[position:start], json.dumps(CUT).encode()]
        position = end
    pieces.append(data[position:])
    return b"".join(pieces).decode("utf-8")


def loads_bounded(text: str, object_pairs_hook: Any = None) -> tuple[Any, bool]:
    """``json.loads`` that survives any depth: ``(value, cut)``; too-deep values become :data:`CUT`.

    Raises :class:`json.JSONDecodeError` as ``json.loads`` does for text that is not JSON.
    """
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook), False
    except RecursionError:
        return json.loads(cut_too_deep(text), object_pairs_hook=object_pairs_hook), True


def holds_cut(value: Any) -> bool:
    """Whether a parsed value contains :data:`CUT` anywhere (iterative: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item == CUT:
            return True
    return False
