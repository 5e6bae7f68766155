"""Loaders: one module per source format, found by content.

Each module in this package that defines ``NAME``, ``sniff`` and ``read`` is a loader
(see :mod:`aiscale.loaders.base`); ``PRIORITY`` (default 50, lower first) orders sniffing
so that specific formats are tried before generic ones. Adding a format is adding a module.

Examples
--------
>>> from aiscale.loaders import formats
>>> isinstance(formats(), dict)
True
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from aiscale.loaders.base import (
    ZIP_MAGIC,
    Chunk,
    is_gzip,
    read_head,
    refuse_special,
    special_file,
    uncompressed_path,
)

_NOT_LOADERS = {"base", "validate"}


class UnknownFormatError(ValueError):
    """A file matched no loader (or not the forced one)."""


@lru_cache(maxsize=1)
def _registry() -> tuple[ModuleType, ...]:
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_LOADERS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, name) for name in ("NAME", "sniff", "read")):
            modules.append(module)
    return tuple(sorted(modules, key=lambda m: (getattr(m, "PRIORITY", 50), m.NAME)))


def formats() -> dict[str, str]:
    """Return the known formats, name to one-line description, in sniffing order."""
    return {m.NAME: (m.__doc__ or "").strip().splitlines()[0] for m in _registry()}


def get_loader(name: str) -> ModuleType:
    """Return the loader module called ``name``, or raise naming the known ones."""
    for module in _registry():
        if module.NAME == name:
            return module
    raise ValueError(f"The value for `format` must be one of {list(formats())}, but {name!r} was passed.")


def detect(path: str | Path) -> ModuleType:
    """Return the loader whose ``sniff`` accepts the file, trying each in priority order.

    Raises
    ------
    UnknownFormatError
        When no loader accepts it; the message names the file and every format tried.
    """
    path = Path(path)
    head = read_head(path)
    if not head.strip():
        raise UnknownFormatError(f"{path}: the file is empty; nothing to load.")
    compressed = is_gzip(path)
    named = uncompressed_path(path) if compressed else path  # x.traj.json.gz sniffs as x.traj.json
    for module in _registry():
        if (not compressed or getattr(module, "READS_GZIP", False)) and module.sniff(named, head):
            return module
    if compressed:
        raise _not_for_gzip(path, [m.NAME for m in _registry() if m.sniff(named, head)])
    if head.startswith(ZIP_MAGIC):
        raise UnknownFormatError(
            f"{path}: a compressed .zip archive that no loader reads as it is. Unzip it "
            f"(unzip {path.name} -d {path.stem}/) and load the folder; gzip-compressed exports "
            "(.jsonl.gz, .json.gz) are read as they are.")
    raise UnknownFormatError(
        f"{path}: no loader recognises this file. Formats tried: {', '.join(formats())}. "
        "Force one with --format NAME (aiscale formats lists them), or load a per-trace "
        "table with aiscale.load_facts."
    )


def read_file(path: str | Path, format: str | None = None) -> tuple[str, Iterator[Chunk]]:
    """Return the format name and the chunks of one file.

    Parameters
    ----------
    path : str or Path
        The export file.
    format : str, optional
        Force a loader by name instead of detecting it.
    """
    path = Path(path)
    module = get_loader(format) if format else detect(path)
    if format and not getattr(module, "READS_GZIP", False) and is_gzip(path):
        raise _not_for_gzip(path, [module.NAME])
    return module.NAME, module.read(path)


def _not_for_gzip(path: Path, names: list[str]) -> UnknownFormatError:
    which = f"the {', '.join(names)} loader reads" if names else "no loader that reads compressed files recognises it; loaders read"
    return UnknownFormatError(f"{path}: gzip-compressed, and {which} only uncompressed files. Decompress it "
                              f"(gunzip -k {path.name}) and load the result.")


def expand_paths(paths: list[str | Path] | str | Path) -> list[Path]:
    """Expand files and folders into a sorted file list.

    Folders are walked recursively; hidden files and folders are skipped, and so are trace
    store folders (a ``manifest.json`` beside ``spans/``, ``traces/`` or a ``.lock``), so a
    store kept inside a loaded folder never loads its own parts.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files.extend(_walk(entry))
        elif entry.is_file():
            files.append(entry)
        elif special_file(entry) is not None:
            refuse_special(entry)
        else:
            raise FileNotFoundError(f"{entry}: no such file or folder.")
    return files


def is_store_folder(folder: Path) -> bool:
    """Whether ``folder`` is an aiscale trace store."""
    return (folder / "manifest.json").is_file() and any(
        (folder / name).exists() for name in ("spans", "traces", "facts", ".lock"))


def _walk(root: Path) -> list[Path]:
    if is_store_folder(root):
        return []
    found = []
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders
                               if not d.startswith(".") and not is_store_folder(here / d))
        found += [here / n for n in names if not n.startswith(".") and (here / n).is_file()]
    return sorted(found)
