"""Report parameters: read ``-p KEY=VALUE`` text safely and check values against a notebook.

A report notebook declares its parameters in the cell tagged ``parameters`` (papermill's
:func:`papermill.inspect_notebook` reads it). Before anything runs, every value given is
checked against that list and against the parameter's kind (a time window, a list of names,
a number...), and turned into plain data: str, int, float, bool, None, and lists (or, for
``columns``, a mapping) of them. Nothing else reaches papermill, so a value can never become
code in the injected parameters cell. ``-p`` text is read as YAML *without* tags or anchors
and without implicit types: ``!!binary``, ``!!python/...``, ``&a``/``*a`` are refused, and
``2025-06-02`` stays a string until the parameter's kind says what it is.

Examples
--------
>>> parse_cli_parameters(["budget_usd=500", "variants=[a, b]", "since=2025-06-02"])
{'budget_usd': '500', 'variants': ['a', 'b'], 'since': '2025-06-02'}
>>> coerce("budget_usd", "500", kind_of("budget_usd", "None"))
500.0
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import math
from pathlib import Path
from typing import Any

import yaml

# what each documented parameter accepts (parameters whose default is not None also take
# the kind of their default); the notebooks' parameters cells name these
KINDS: dict[str, str] = {
    "since": "window", "until": "window", "baseline_since": "window", "baseline_until": "window",
    "variants": "names", "models": "names", "tools": "names", "users": "names", "trace_ids": "names",
    "prices": "file", "columns": "mapping", "a": "name", "b": "name",
    "alpha": "probability", "effect": "probability",
    "budget_usd": "amount", "traffic_per_day": "amount",
    "horizon_days": "count", "max_output_tokens": "count", "top": "count",
}

ACCEPTS = {
    "window": 'a relative window ("7d", "24h", "2w") or an ISO date/time such as 2025-06-02, or null',
    "names": "a name or a list of names such as [a, b], or null",
    "file": "the path of an existing file, or null",
    "mapping": "a mapping of column names such as {TIMESTAMP: started_at}, or null",
    "name": "a name (text), or null",
    "probability": "a number strictly between 0 and 1",
    "amount": "a number >= 0, or null",
    "count": "a whole number >= 1, or null",
    "int": "a whole number", "float": "a number", "bool": "true or false", "str": "text",
    "any": "text, a number, true/false, null, or a list of them",
}

_NULL = {"", "null", "none", "~"}
_BOOL = {"true": True, "false": False}


class _PlainLoader(yaml.BaseLoader):
    """YAML with every scalar kept as a string (no implicit dates, booleans or numbers)."""


def parse_cli_parameters(items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` texts into strings, lists and mappings of strings.

    Values use YAML flow syntax for lists and mappings; tags, anchors and aliases are
    refused with a :class:`ValueError` naming the parameter.
    """
    parameters: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"A parameter must be KEY=VALUE with KEY a Python name, but {item!r} was passed.")
        try:
            events = list(yaml.parse(value, Loader=_PlainLoader))
        except yaml.YAMLError as exc:
            raise ValueError(f"-p {key}: cannot read {value!r}: {str(exc).splitlines()[0]}") from None
        for event in events:
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ValueError(f"-p {key}: YAML anchors and aliases are not accepted ({value!r}).")
            if getattr(event, "tag", None) is not None and not isinstance(event, yaml.DocumentStartEvent):
                raise ValueError(f"-p {key}: YAML tags such as {event.tag!r} are not accepted; give plain "
                                 f"text, numbers, true/false, null or [lists] ({value!r}).")
        parameters[key] = _plain_data(value) if value.strip() else None
    return parameters


def _plain_data(text: str) -> Any:
    """Construct YAML already checked to hold no tag, anchor or alias: strings, lists, mappings."""
    loader = _PlainLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def declared(notebook: str | Path) -> dict[str, str]:
    """Return the notebook's parameters (name -> default expression) from its parameters cell."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(notebook)).items()}


def kind_of(name: str, default: str) -> str:
    """Return what parameter ``name`` accepts: its documented kind, else its default's type."""
    if name in KINDS:
        return KINDS[name]
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return "any"
    return type(value).__name__ if isinstance(value, (bool, int, float, str)) else "any"


def check_parameters(notebook: str | Path, parameters: dict[str, Any], *, name: str = "") -> dict[str, Any]:
    """Check ``parameters`` against the notebook's declared ones; return them as plain data.

    Raises
    ------
    ValueError
        A parameter the notebook does not declare (with the list it does and the closest
        name), or a value its parameter does not accept (with what it accepts).
    """
    known = declared(notebook)
    label = name or Path(notebook).stem
    checked = {}
    for key, value in parameters.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise ValueError(f"The notebook {label!r} has no parameter `{key}`; it accepts "
                             f"{', '.join(sorted(known))}.{hint}")
        checked[key] = coerce(key, value, kind_of(key, known[key]))
    return checked


def coerce(key: str, value: Any, kind: str) -> Any:
    """Return ``value`` as plain data of ``kind``, or raise a ValueError naming ``key``."""
    try:
        result = _coerce(value, kind)
    except (ValueError, TypeError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise ValueError(f"The parameter `{key}` accepts {ACCEPTS[kind]}, but {value!r} was passed"
                         f"{detail}.") from None
    return result


def _coerce(value: Any, kind: str) -> Any:
    if _is_null(value):
        if kind in ("probability", "int", "float", "bool", "str"):
            raise ValueError("")
        return None
    if kind == "window":
        return _window(value)
    if kind == "names":
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [_text(v) for v in items]
    if kind == "name" or kind == "str":
        return _text(value)
    if kind == "file":
        path = Path(_text(value)).expanduser()
        if not path.is_file():
            raise ValueError(f"no file at {str(path)!r}")
        return str(path.resolve())
    if kind == "mapping":
        if not isinstance(value, dict):
            raise TypeError("")
        return {_text(k): _text(v) for k, v in value.items()}
    if kind in ("probability", "amount", "float"):
        number = _number(value)
        if kind == "probability" and not 0 < number < 1 or kind == "amount" and number < 0:
            raise ValueError("")
        return number
    if kind in ("count", "int"):
        number = _number(value)
        if number != int(number) or kind == "count" and number < 1:
            raise ValueError("")
        return int(number)
    if kind == "bool":
        return _bool(value)
    return _plain(value)


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, str) and value.strip().lower() in _NULL


def _text(value: Any) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError("")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("")
    number = float(value) if isinstance(value, (int, float, str)) else None
    if number is None or not math.isfinite(number):
        raise ValueError("")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL:
        return _BOOL[value.strip().lower()]
    raise ValueError("")


def _window(value: Any) -> str:
    from aiscale.report.context import parse_since

    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    text = _text(value)
    try:
        parse_since(text)
    except Exception:  # pandas raises several types for unreadable dates
        raise ValueError("not a window or a date") from None
    return text


def _plain(value: Any) -> Any:
    """A parameter without a documented kind: YAML-like scalars, lists of them."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else str(value)
    if not isinstance(value, str):
        raise TypeError("")
    lowered = value.strip().lower()
    if lowered in _BOOL:
        return _BOOL[lowered]
    for convert in (int, float):
        try:
            number = convert(value)
        except ValueError:
            continue
        return number if math.isfinite(number) else value
    return value
