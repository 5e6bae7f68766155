"""One load at a time per store: an OS file lock on ``STORE/.lock``, held from plan to commit.

A second load waits (saying so once) or, with ``wait=False``, fails at once with a clear
error. The lock is released by the OS when its holder exits, however it exits, so a killed
load never leaves a stale lock behind. Readers take no lock: they read the last committed
manifest and the parts it names, which a commit never changes (it adds new parts first).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> with load_lock(root):
...     (root / ".lock").exists()
True
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"


class StoreBusyError(RuntimeError):
    """Another process is loading into the store and the caller chose not to wait."""


def _holder(handle) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return f" (process {text})" if text else ""


@contextmanager
def load_lock(root: Path, *, wait: bool = True, on_wait: Callable[[str], None] | None = None,
              poll_s: float = 0.2) -> Iterator[None]:
    """Hold the store's load lock for the duration of the ``with`` block.

    Parameters
    ----------
    root : Path
        The store folder.
    wait : bool, default=True
        Wait for another load to finish; False raises :class:`StoreBusyError` instead.
    on_wait : callable, optional
        Called once with a message when the lock is busy and the call waits.
    """
    path = root / LOCK_NAME
    handle = open(path, "a+")
    try:
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if not wait:
                    raise StoreBusyError(
                        f"{root}: another load into this store is running{holder}; wait for it, "
                        "or run without --no-wait to queue behind it.") from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for another load into {root} to finish{holder} ...")
                told = True
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()
