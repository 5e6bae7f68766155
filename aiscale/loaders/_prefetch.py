"""Read ahead in other threads: the next batches are parsed and mapped while the store writes this one.

:func:`prefetched` runs an iterator one item ahead in a second thread (the platform loaders);
:func:`mapped_in_order` works on the items of an iterator in several threads and hands the
outputs back in the items' order (the OTLP loader: one DuckDB connection per thread, one
block of lines per item). Either stops when the caller stops iterating (the generator is
closed and the threads joined), holds a bounded number of items, and raises an error raised
while reading in the caller, where it would have been raised without the threads.

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

import contextlib
import itertools
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

Item = TypeVar("Item")


def prefetched(items: Iterator[Item], depth: int = 1, name: str = "aiscale-read-ahead") -> Iterator[Item]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the caller.

    The one-thread case of :func:`mapped_in_order`: the thread takes each item (the iteration is
    the work), and besides the item the caller holds, ``depth`` wait and one more is being read.

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
    return mapped_in_order(items, _itself, opened=contextlib.nullcontext, workers=1, held=depth + 2,
                           name=name)


def _itself(item: Item, _state: object) -> tuple[Item]:
    return (item,)


Out = TypeVar("Out")
State = TypeVar("State")


def mapped_in_order(items: Iterator[Item], work: Callable[[Item, State], Iterable[Out]], *,
                    opened: Callable[[], AbstractContextManager[State]], workers: int = 2,
                    held: int | None = None, name: str = "aiscale-map") -> Iterator[Out]:
    """``work(item, state)`` for each of ``items`` in ``workers`` threads, the outputs in ``items``' order.

    Each thread opens its own ``state`` (e.g. a DuckDB connection) with ``opened()`` and takes
    the next item when one is free; the items are taken one at a time, in order, so ``items``
    needs no locking of its own. At most ``held`` items (default ``workers + 1``) are taken
    and not yet passed by the caller, being worked on or waiting, so memory stays bounded
    however far the workers could run ahead. An error raised taking an item or working on it
    is raised in the caller after the outputs before it, where it would have been raised
    without the threads (the outputs its item gave before the error come first). When the
    caller stops iterating, the threads finish their item and are joined, and ``items`` is
    closed.

    Parameters
    ----------
    items : Iterator
        The work, in order; closed (when it is a generator) once the caller stops.
    work : callable
        ``work(item, state)``: the outputs of one item (an iterable, gathered in the thread).
    opened : callable
        A context manager per thread, giving its ``state``.
    workers : int, default=2
        Threads.
    held : int, optional
        Items held at once (taken and not yet passed by the caller); ``workers + 1`` by default.
    name : str, default="aiscale-map"
        The threads' name.

    Returns
    -------
    Iterator
        The outputs of every item, item after item.

    Examples
    --------
    >>> import contextlib
    >>> list(mapped_in_order(iter(range(5)), lambda x, s: [s * x] * x,
    ...                      opened=lambda: contextlib.nullcontext(10)))
    [10, 20, 20, 30, 30, 30, 40, 40, 40, 40]
    """
    held = workers + 1 if held is None else held
    slots = threading.Semaphore(held)
    taking = threading.Lock()  # one thread takes from ``items`` at a time, numbering in order
    ready = threading.Condition()  # guards ``results`` and ``at.stopped``
    results: dict[int, tuple[list, BaseException | None, bool]] = {}  # number: (outputs, error, last)
    at = types.SimpleNamespace(taken=0, exhausted=False, stopped=False)

    def post(number: int, outputs: list, error: BaseException | None, last: bool) -> None:
        with ready:
            results[number] = (outputs, error, last)
            ready.notify_all()

    def take() -> tuple[int, Item] | None:
        with taking:
            if at.exhausted or at.stopped:
                return None
            number = at.taken
            at.taken += 1
            try:
                return number, next(items)
            except StopIteration:
                at.exhausted = True
                post(number, [], None, True)
            except BaseException as exc:  # handed to the caller, raised there
                at.exhausted = True
                post(number, [], exc, True)
            return None

    def run() -> None:
        try:
            with opened() as state:
                while True:
                    slots.acquire()
                    if at.stopped or (job := take()) is None:
                        return
                    number, item = job
                    del job  # the item is let go once worked on, not held while the thread waits
                    outputs: list = []
                    try:
                        outputs.extend(work(item, state))
                    except BaseException as exc:  # handed to the caller, raised there
                        del item
                        post(number, outputs, exc, True)
                        return
                    del item
                    post(number, outputs, None, False)
        except BaseException as exc:  # opening or closing the state failed
            with ready:
                results.setdefault(-1, ([], exc, True))
                ready.notify_all()

    threads = [threading.Thread(target=run, name=f"{name}-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for number in itertools.count():
            with ready:
                while number not in results and -1 not in results:
                    ready.wait()
                outputs, error, last = results.pop(number, None) or results[-1]
            outputs.reverse()
            while outputs:  # each output let go once the caller has it
                yield outputs.pop()
            if error is not None:
                raise error
            if last:
                return
            slots.release()  # the caller has passed this item: a worker may take another
    finally:
        with ready:
            at.stopped = True
        for _ in threads:
            slots.release()
        for thread in threads:
            thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
