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
from pathlib import Path

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
    """Return the manifest of the store at ``root``: ``{"files": {sha256: {path, format, rows..., parts}}}``."""
    path = root / MANIFEST
    if not path.exists():
        return {"version": 1, "files": {}}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: the store manifest is not valid JSON ({exc}); it was edited or "
                         "damaged. Restore it from a backup, or delete the store folder and load "
                         "the files again.") from None


def write_manifest(root: Path, manifest: dict) -> None:
    """Replace the manifest atomically (write a temporary file, then rename it)."""
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST)


def list_parts(root: Path, manifest: dict, table: str, *, days: tuple[str, str] | None = None) -> list[str]:
    """Parquet files of one table that the manifest names, sorted (see :meth:`TraceStore.parts`)."""
    names = [part for entry in manifest["files"].values()
             for part in entry.get("parts", {}).get(table, [])]
    if days is not None and table == "spans":
        low, high = (f"day={d}" for d in days)
        names = [n for n in names if not n.startswith("day=") or n.split("/")[0] == "day=unknown"
                 or low <= n.split("/")[0] <= high]
    return sorted(str(root / table / name) for name in names)
