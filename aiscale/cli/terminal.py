"""What the command line prints is text only: control characters and escape sequences from
trace strings (model names, file names) are removed before they reach the terminal.

Examples
--------
>>> printable("gpt\\x1b[31m-evil\\x1b[0m\\x07 ok\\n")
'gpt-evil ok\\n'
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (newline, carriage
    return and tab are kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


class PrintableStream:
    """A text stream wrapper that passes everything written through :func:`printable`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
