"""One build at a time of a store's kept tables, across threads and processes.

The facts, the priced calls and the loop table are kept in ``STORE/cache/``
(:mod:`aiscale.store.facts_cache`). Two readers that find a table missing would each compute
it, at the same cost, and keep the same file: two reports on one store, a report and
``aiscale facts``, a report's background thread and a section. :func:`building` holds an OS
file lock on ``STORE/cache/.<kind>.lock`` while one of them checks for the kept file and builds
it; the others wait, then find it kept. The OS releases the lock when its holder exits, however
it exits. A store that cannot be written to keeps nothing, so there is nothing to wait for: no
lock is taken.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> with building(root, "facts"):
...     (root / "cache" / ".facts.lock").exists()
True
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FOLDER = "cache"


@contextmanager
def building(root: Path, kind: str) -> Iterator[None]:
    """Hold the build lock of the store's kept ``kind`` (``"facts"``, ``"calls"``, ``"loops"``).

    Waits while another thread or process holds it. Each call opens the lock file anew, so the
    lock excludes threads of one process as it excludes processes (an open file's lock is its
    own). Check for the kept file again inside the block: the holder before may have kept it.
    """
    folder = Path(root) / FOLDER
    try:
        folder.mkdir(exist_ok=True)
        handle = open(folder / f".{kind}.lock", "a")
    except OSError:  # a store we may only read: nothing is kept, so nothing is shared
        yield
        return
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:  # a file system without locks (ENOLCK): build as if alone, as before there was one
            pass
        yield
    finally:
        handle.close()  # closing the file releases its lock


def built_once(root: Path, kind: str, find: Callable[[], T | None],
               build: Callable[[], tuple[T, Callable[[], None]]],
               lock: AbstractContextManager | None = None) -> T:
    """A kept table found by ``find()``, else built by ``build()`` once however many ask at once.

    ``find`` (the memo or the kept file; None when neither has it) runs holding ``lock`` (the
    store's thread lock of the table); on a miss the build lock of ``kind`` is taken, then
    ``lock``, and ``find`` runs again (the holder before may have kept it) before ``build``.
    ``build`` gives the table and what keeps it in a file; that runs after ``lock`` is released
    (a thread waiting for the table takes it from the memo meanwhile) and before the build lock
    is (another process finds the file written).

    Examples
    --------
    >>> import tempfile
    >>> kept = []
    >>> find = lambda: kept[0] if kept else None
    >>> build = lambda: ("table", lambda: kept.append("table"))
    >>> root = Path(tempfile.mkdtemp())
    >>> built_once(root, "demo", find, build), built_once(root, "demo", find, lambda: 1 / 0)  # found, not built
    ('table', 'table')
    """
    lock = lock or nullcontext()
    with lock:
        found = find()
    if found is not None:
        return found
    with building(root, kind):
        keep = None
        with lock:
            found = find()
            if found is None:
                found, keep = build()
        if keep is not None:
            keep()
    return found
