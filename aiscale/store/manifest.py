"""The store's manifest: which files are loaded (by content hash) and which Parquet parts hold them.

Examples
--------
>>> import tempfile
>>> read_manifest(Path(tempfile.mkdtemp()))
{'version': 1, 'files': {}}
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path, PurePosixPath

TABLES = ("spans", "traces", "facts")
MANIFEST = "manifest.json"


def file_digest(path: Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path) -> dict:
    """Return the manifest of the store at ``root``, checked for shape and paths.

    ``{"files": {sha256: {path, format, rows..., parts: {table: [relative part paths]}}}}``.
    A manifest that is not JSON, has another shape, names a part outside its table folder
    (absolute, ``..``) or names one part twice raises ValueError saying what to do.
    """
    path = root / MANIFEST
    if not path.exists():
        return {"version": 1, "files": {}}
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: the store manifest is not valid JSON ({exc}); it was edited or "
                         "damaged. Restore it from a backup, or delete the store folder and load "
                         "the files again.") from None
    check_manifest(manifest, path)
    return manifest


def check_manifest(manifest: object, path: Path) -> None:
    """Raise ValueError naming the manifest and the rule when its shape or a part path is wrong."""
    def bad(rule: str) -> ValueError:
        return ValueError(f"{path}: the store manifest {rule}; it was edited or damaged. Restore it "
                          "from a backup, or delete the store folder and load the files again.")

    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise bad('must be an object with a "files" object')
    seen: set[str] = set()
    for digest, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("parts", {}), dict):
            raise bad(f"entry {digest[:16]!r} must be an object with a \"parts\" object")
        for table, names in entry.get("parts", {}).items():
            if table not in TABLES or not isinstance(names, list):
                raise bad(f"entry {digest[:16]!r} lists parts of an unknown table {table!r}")
            for name in names:
                if not isinstance(name, str) or not _inside(name):
                    raise bad(f"entry {digest[:16]!r} names the part {name!r}, which is not a "
                              f"relative path inside {table}/")
                key = f"{table}/{name}"
                if key in seen:
                    raise bad(f"names the part {key!r} twice")
                seen.add(key)


def _inside(name: str) -> bool:
    relative = PurePosixPath(name)
    return (bool(name) and not relative.is_absolute() and ".." not in relative.parts
            and "\\" not in name and name.endswith(".parquet"))


def part_checksum(path: Path) -> dict:
    """Size in bytes and SHA-256 of one Parquet part, recorded at commit and checked by verify."""
    return {"size": path.stat().st_size, "sha256": file_digest(path)}


def write_manifest(root: Path, manifest: dict) -> None:
    """Replace the manifest atomically (write a temporary file, then rename it)."""
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST)


def list_parts(root: Path, manifest: dict, table: str, *, days: tuple[str, str] | None = None) -> list[str]:
    """Parquet files of one table that the manifest names, sorted (see :meth:`TraceStore.parts`).

    A part the manifest names but the folder lacks raises FileNotFoundError naming it and
    ``aiscale verify``.
    """
    names = [part for entry in manifest["files"].values()
             for part in entry.get("parts", {}).get(table, [])]
    if days is not None and table == "spans":
        low, high = (f"day={d}" for d in days)
        names = [n for n in names if not n.startswith("day=") or n.split("/")[0] == "day=unknown"
                 or low <= n.split("/")[0] <= high]
    paths = sorted(str(root / table / name) for name in names)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{root}: {len(missing)} part(s) named by the manifest are missing (first: {missing[0]}); "
            f"run `aiscale verify --store {root}` to see which loaded files to reload.")
    return paths
