"""Read ahead in a second thread: the next batch is parsed and mapped while the store writes this one.

Used by the OTLP and platform loaders. The worker stops when the caller stops iterating (the
generator is closed and the thread joined), and an error raised while reading is raised in
the caller, where it would have been raised without the thread.

Examples
--------
>>> list(prefetched(iter(range(4))))
[0, 1, 2, 3]
>>> def broken():
...     yield 1
...     raise ValueError("line 2: not JSON")
>>> try:
...     list(prefetched(broken()))
... except ValueError as exc:
...     print(exc)
line 2: not JSON
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

Item = TypeVar("Item")


def prefetched(items: Iterator[Item], depth: int = 1, name: str = "aiscale-read-ahead") -> Iterator[Item]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the caller.

    Parameters
    ----------
    items : Iterator
        What to read ahead; closed (when it is a generator) once the caller stops.
    depth : int
        How many items may wait for the caller.
    name : str
        The thread's name.

    Returns
    -------
    Iterator
        The same items in the same order.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    break
            put((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        worker.join()
