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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
