"""Check a store's parts against the sizes and checksums recorded when they were committed.

``aiscale verify --store S`` runs :func:`verify_store`; a damaged file (a part missing,
truncated or changed) is named with the source file to reload, and ``drop_damaged`` removes
its manifest entry and parts so that loading that file again works.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> verify_store(Path(tempfile.mkdtemp())).ok
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aiscale.store.lock import load_lock
from aiscale.store.manifest import part_checksum, read_manifest, write_manifest


@dataclass(frozen=True)
class Verification:
    """Per loaded file: its source path, format, parts checked and problems found."""

    root: Path
    files: list[dict] = field(default_factory=list)

    @property
    def damaged(self) -> list[dict]:
        """The loaded files with at least one problem."""
        return [f for f in self.files if f["problems"]]

    @property
    def ok(self) -> bool:
        """True when every part is present with its recorded size and checksum."""
        return not self.damaged

    def summary(self) -> pd.DataFrame:
        """One row per loaded file: path, format, parts, unchecked (no checksum recorded), problems."""
        return pd.DataFrame([{**f, "problems": "; ".join(f["problems"])} for f in self.files],
                            columns=["path", "format", "parts", "unchecked", "problems"])

    def __str__(self) -> str:
        lines = [f"{self.root}: {len(self.files)} loaded files, "
                 f"{sum(f['parts'] for f in self.files)} parts checked"]
        unchecked = sum(f["unchecked"] for f in self.files)
        if unchecked:
            lines.append(f"{unchecked} part(s) were committed before checksums were recorded: "
                         "checked for presence only")
        for f in self.damaged:
            lines.append(f"DAMAGED {f['path']}: " + "; ".join(f["problems"][:3])
                         + (f" (+{len(f['problems']) - 3} more)" if len(f["problems"]) > 3 else ""))
        if self.damaged:
            lines.append(f"to repair: `aiscale verify --store {self.root} --drop-damaged`, then load "
                         "these files again: " + " ".join(f["path"] for f in self.damaged))
        else:
            lines.append("all parts intact")
        return "\n".join(lines)


def verify_store(root: Path) -> Verification:
    """Check every part the manifest names: present, recorded size, recorded SHA-256."""
    manifest = read_manifest(root)
    files = []
    for digest, entry in manifest["files"].items():
        sums = entry.get("checksums", {})
        problems, parts, unchecked = [], 0, 0
        for table, names in entry.get("parts", {}).items():
            for name in names:
                parts += 1
                key = f"{table}/{name}"
                path = root / table / name
                if not os.path.isfile(path):
                    problems.append(f"{key} is missing")
                    continue
                if key not in sums:
                    unchecked += 1
                    continue
                found = part_checksum(path)
                if found["size"] != sums[key]["size"]:
                    problems.append(f"{key} has {found['size']} bytes, {sums[key]['size']} were committed")
                elif found["sha256"] != sums[key]["sha256"]:
                    problems.append(f"{key} changed since it was committed (checksum differs)")
        files.append({"digest": digest, "path": entry.get("path", "?"), "format": entry.get("format"),
                      "parts": parts, "unchecked": unchecked, "problems": problems})
    return Verification(root, files)


def drop_damaged(root: Path) -> list[str]:
    """Remove the manifest entries (and remaining parts) of damaged files; return their paths."""
    with load_lock(root):
        result = verify_store(root)
        manifest = read_manifest(root)
        for f in result.damaged:
            entry = manifest["files"].pop(f["digest"])
            for table, names in entry.get("parts", {}).items():
                for name in names:
                    (root / table / name).unlink(missing_ok=True)
            if entry.get("index"):
                (root / entry["index"]).unlink(missing_ok=True)
        if result.damaged:
            manifest.pop("orphan_spans", None)  # counted again in full at the next load
        write_manifest(root, manifest)
    return [f["path"] for f in result.damaged]
