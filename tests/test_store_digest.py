"""A file's digest computed in a thread beside its parse: the same digest, the same part names,
the same store; an error in the thread surfaces; files that may be known are digested first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import aiscale
from aiscale.store import loading
from aiscale.store.load_summary import LoadSummary
from aiscale.store.verify import verify_store

FIXTURES = Path(__file__).parent / "fixtures" / "platforms"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def runs(folder: Path, name: str, prefix: str = "") -> Path:
    """The LangSmith fixture with every id led by ``prefix`` (a file of its own bytes)."""
    path = folder / name
    path.write_text((FIXTURES / "langsmith_sdk_runs.jsonl").read_text().replace('"01a2153d', f'"{prefix}01a2153d'))
    return path


def manifest(store: aiscale.TraceStore) -> dict:
    return json.loads((store.root / "manifest.json").read_text())


def test_a_new_file_is_digested_beside_its_parse_and_named_by_its_bytes(tmp_path):
    path = runs(tmp_path, "runs.jsonl")
    (job,) = loading.plan(tmp_path / "empty", [path], {path}, LoadSummary(files=[]))
    assert isinstance(job[1], loading.PendingDigest) and job[1].future.result() == sha256(path)
    store = aiscale.load([path], store=tmp_path / "s")
    (digest, entry), = manifest(store)["files"].items()
    assert digest == sha256(path) and entry["bytes"] == path.stat().st_size
    names = [name.split("/")[-1] for table in ("spans", "traces") for name in entry["parts"][table]]
    assert names and all(name.startswith(digest[:16] + "-") for name in names)
    assert sorted(str(p.relative_to(store.root / "spans")) for p in (store.root / "spans").rglob("*.parquet")) \
        == sorted(entry["parts"]["spans"])
    assert verify_store(store.root).ok and not list(store.root.glob(".load-*"))
    again = store.load([path])
    assert [f.status for f in again.files] == ["already loaded"] and again.rows_read == 0
    assert store.facts()["trace_id"].nunique() == 2


def test_an_error_in_the_digest_thread_is_raised_and_the_store_stays_as_it_was(tmp_path, monkeypatch):
    first = runs(tmp_path, "first.jsonl")
    store = aiscale.load([first], store=tmp_path / "s")
    before = (store.root / "manifest.json").read_bytes()

    def broken(path):
        raise OSError(f"{path}: the disk went away")

    monkeypatch.setattr(loading, "file_digest", broken)
    other = runs(tmp_path, "second.jsonl", prefix="other-size-")
    with pytest.raises(OSError, match="second.jsonl: the disk went away"):
        store.load([other])
    assert (store.root / "manifest.json").read_bytes() == before
    assert not list(store.root.glob(".load-*"))
    assert sorted(p.name for p in (store.root / "spans").rglob("*.parquet")) == sorted(
        name.split("/")[-1] for name in manifest(store)["files"][sha256(first)]["parts"]["spans"])


def test_files_that_may_be_known_are_digested_before_they_are_read(tmp_path):
    first, twin = runs(tmp_path, "a.jsonl", "a-"), runs(tmp_path, "b.jsonl", "b-")  # same size, other bytes
    assert first.stat().st_size == twin.stat().st_size and sha256(first) != sha256(twin)
    jobs = loading.plan(tmp_path / "s", [first, twin], {first, twin}, LoadSummary(files=[]))
    assert [job[1] for job in jobs] == [sha256(first), sha256(twin)]  # sizes clash: digested first
    store = aiscale.load([first], store=tmp_path / "s")
    jobs = loading.plan(store.root, [twin], {twin}, LoadSummary(files=[]))
    assert [job[1] for job in jobs] == [sha256(twin)]  # the store holds a file of its size
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(first.read_bytes())
    summary = LoadSummary(files=[])
    assert loading.plan(store.root, [copy], {copy}, summary) == []
    assert [f.status for f in summary.files] == ["already loaded"]
    store.load([twin])
    assert set(manifest(store)["files"]) == {sha256(first), sha256(twin)}


def test_a_store_whose_entries_have_no_size_digests_every_file_first(tmp_path):
    store = aiscale.load([runs(tmp_path, "a.jsonl", "a-")], store=tmp_path / "s")
    data = manifest(store)
    for entry in data["files"].values():
        del entry["bytes"]  # as written before sizes were kept
    (store.root / "manifest.json").write_text(json.dumps(data))
    other = runs(tmp_path, "other.jsonl", "other-size-")
    jobs = loading.plan(store.root, [other], {other}, LoadSummary(files=[]))
    assert [job[1] for job in jobs] == [sha256(other)]
