"""The OTLP parse: ``from_json`` over the lines as text; where it raises, the block batch by
batch, and the tolerant query only for a batch that raised again.

The reference is the tolerant query (``try(from_json(try(decode(raw))))``) over every line of a
block, as the loader parsed before (put in place of ``parse_lines``). With the fast parse and
its fallback the loader must give the same chunks: span and trace tables, quarantined rows
(file, line, words, excerpt), rows read; on files with bad lines in several batches, lines and
strings that are not UTF-8, a file whose every batch has a bad line, and a file of every
tolerance case (which must not send a block to the fallback at all).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_loader_otlp import BAD_LINES, COLLECTOR, SDK, _line, _span
from test_loader_otlp_equivalence import _awkward_lines
from test_loader_otlp_parallel import _assert_same_chunks, _serial

from aiscale.loaders import _otlp_parse, otlp
from aiscale.loaders._otlp_sql import parse_query
from aiscale.loaders.base import ArrowChunk

NOT_UTF8 = "line is not valid UTF-8"


def _tolerant(con, lines, bounds):
    """The parse as it was: the tolerant query over all the lines at once (in their order)."""
    con.register("otlp_tolerant", lines)
    con.execute("SET preserve_insertion_order = true")
    try:
        return con.sql(parse_query("otlp_tolerant")).to_arrow_table()
    finally:
        con.execute("SET preserve_insertion_order = false")
        con.unregister("otlp_tolerant")


def _both(path: Path, monkeypatch) -> tuple[list, list, dict]:
    """The chunks with the fast parse, with the tolerant one, and the fast parse's batch counts."""
    before = _otlp_parse.COUNTS.copy()
    fast = _serial(path)
    counts = {k: _otlp_parse.COUNTS[k] - before[k]
              for k in ("blocks", "blocks_failed", "batches", "batches_reparsed")}
    with monkeypatch.context() as patch:
        patch.setattr(otlp, "parse_lines", _tolerant)
        tolerant = _serial(path)
    return fast, tolerant, counts


def _quarantined(chunks: list) -> dict[int, str]:
    return {q.source_row: q.reason for c in chunks for q in c.quarantined}


def _spans(chunks: list) -> int:
    return sum(c.span_table.num_rows for c in chunks if isinstance(c, ArrowChunk))


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _bad_utf8() -> list[bytes]:
    """Lines that are not UTF-8: out of any string, and inside valid JSON's strings."""
    def line(n: int, **fields) -> bytes:
        return _line(_span(f"{0xC000 + n:016x}", {"gen_ai.operation.name": "chat"}, **fields)).encode()

    named = line(1, name="BAD")
    return [b'\xff\xfe{"resourceSpans": []}',
            named.replace(b"BAD", b"caf\xe9"),  # Latin-1 in the span's name
            named.replace(b"BAD", b"\xed\xa0\x80"),  # a UTF-16 surrogate encoded as UTF-8
            named.replace(b"BAD", b"\xc0\xaf"),  # an overlong encoding
            named.replace(b'"chat"', b'"ch\xffat"'),  # in an attribute's string value
            named.replace(b'"gen_ai.operation.name"', b'"gen_ai.\x80name"'),  # in a key
            line(2, events=[{"name": "BAD"}]).replace(b"BAD", b"\xfe"),  # in a field read as JSON
            line(3, zzz="BAD").replace(b"BAD", b"\xff")]  # in a field the schema does not read


def test_non_utf8_lines_and_strings_are_quarantined_as_before(tmp_path, monkeypatch):
    good = [_line(_span(f"{0xD000 + n:016x}", {"gen_ai.operation.name": "chat"})).encode()
            for n in range(len(_bad_utf8()) + 1)]
    lines = [x for pair in zip(good, _bad_utf8(), strict=False) for x in pair] + good[-1:]
    path = _write(tmp_path / "utf8.jsonl", lines)
    bad_rows = list(range(2, 2 * len(_bad_utf8()) + 1, 2))
    for batch_bytes in (otlp.BATCH_BYTES, 1):  # one batch; one line a batch
        monkeypatch.setattr(otlp, "BATCH_BYTES", batch_bytes)
        fast, tolerant, counts = _both(path, monkeypatch)
        _assert_same_chunks(fast, tolerant, at_least=1)
        assert _quarantined(fast) == dict.fromkeys(bad_rows, NOT_UTF8)
        assert _spans(fast) == _spans(tolerant) == len(good)  # the batch's good lines still load
        assert counts["batches_reparsed"] == (1 if batch_bytes > 1 else len(bad_rows))
        assert counts["batches"] == (1 if batch_bytes > 1 else len(lines))
        assert counts["blocks_failed"] == counts["blocks"] == 1


@pytest.fixture(scope="module")
def spread(tmp_path_factory) -> Path:
    """Every tolerance and quarantine rule, bad lines and lines not UTF-8 among good ones."""
    lines = _awkward_lines()
    for at, bad in zip(range(5, 10 * len(_bad_utf8()), 9), _bad_utf8(), strict=False):
        lines.insert(at, bad)
    lines.insert(7, b"   \t")  # blank lines are no rows
    lines.insert(12, b"")
    return _write(tmp_path_factory.mktemp("parse") / "spread.jsonl", lines * 3)


def test_bad_lines_in_several_batches_give_the_chunks_of_the_tolerant_parse(spread, monkeypatch):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 24 << 10)
    monkeypatch.setattr(otlp, "BATCH_BYTES", 6 << 10)
    fast, tolerant, counts = _both(spread, monkeypatch)
    _assert_same_chunks(fast, tolerant, at_least=1)
    reasons = _quarantined(fast)
    assert list(reasons.values()).count(NOT_UTF8) == 3 * (len(_bad_utf8()) + 1)  # and BAD_LINES[4]
    assert sum("invalid JSON" in r for r in reasons.values()) >= 3 * 2
    assert sum(1 for _ in otlp._blocks(spread)) > 3
    assert 3 <= counts["batches_reparsed"] < counts["batches"]  # both ways were taken
    assert 1 <= counts["blocks_failed"] <= counts["blocks"] > 3
    quarantined = sum(len(c.quarantined) for c in fast)
    assert sum(c.rows_read for c in fast) == _spans(fast) + quarantined > quarantined


def test_a_file_whose_every_batch_has_a_bad_line_loads_like_the_tolerant_parse(tmp_path, monkeypatch):
    good = [json.dumps(json.loads(x)).encode() for x in SDK.read_bytes().splitlines() if x.strip()]
    bad = [b'{"resourceSpans": [', b"not json", *_bad_utf8()]
    lines = [x for n, b in enumerate(bad) for x in (good[n % len(good)], b)]
    path = _write(tmp_path / "every.jsonl", lines)
    sizes = [len(x) + 1 for x in lines]
    monkeypatch.setattr(otlp, "BATCH_BYTES", max(sizes) * 2 + 1)  # two or three lines a batch
    fast, tolerant, counts = _both(path, monkeypatch)
    _assert_same_chunks(fast, tolerant, at_least=1)
    assert counts["batches_reparsed"] == counts["batches"] > 2
    reasons = _quarantined(fast)
    assert sorted(reasons) == list(range(2, 2 * len(bad) + 1, 2))
    assert sum(c.rows_read for c in fast) == _spans(fast) + sum(len(c.quarantined) for c in fast)
    assert _spans(fast) == _spans(tolerant) > 0


def test_tolerance_cases_take_the_fast_parse_and_give_its_rows(tmp_path, monkeypatch):
    """Ids in base64 and hex, ``intValue`` and times as numbers, status as code and name,
    arrays and kvlists, an all-zero parent, a BOM, blank lines: no batch raises."""
    def request(line: bytes) -> bool:  # the awkward file's lines that are whole UTF-8 requests
        try:
            return isinstance(json.loads(line.decode()).get("resourceSpans"), list)
        except ValueError:
            return False

    lines = [x for x in _awkward_lines() if request(x)]
    assert len(lines) > 30 and len(lines) < len(_awkward_lines())
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines[3:3] = [b"", b"  ", b"\t\r"]
    path = _write(tmp_path / "tolerant.jsonl", lines)
    monkeypatch.setattr(otlp, "BATCH_BYTES", 4 << 10)
    fast, tolerant, counts = _both(path, monkeypatch)
    _assert_same_chunks(fast, tolerant, at_least=1)
    assert counts["batches"] > 3 and counts["blocks_failed"] == counts["batches_reparsed"] == 0
    reasons = _quarantined(fast)
    assert reasons and not any(r == NOT_UTF8 or "invalid JSON" in r for r in reasons.values())
    assert 4 not in reasons and 5 not in reasons  # blank lines: no rows
    assert sum(c.rows_read for c in fast) == _spans(fast) + sum(len(c.quarantined) for c in fast)


def test_the_collector_and_sdk_fixtures_parse_without_the_fallback(monkeypatch):
    for path in (SDK, COLLECTOR):
        before = _otlp_parse.COUNTS["blocks_failed"]
        assert _spans(_serial(path)) > 5 and _otlp_parse.COUNTS["blocks_failed"] == before


def test_bad_lines_keep_their_words(tmp_path, monkeypatch):
    """The loader tests' bad lines, each alone in its batch: the same words as ever."""
    first = SDK.read_bytes().split(b"\n")[0]
    content = [first] + [(first[:300] if t is None else t if isinstance(t, bytes) else t.encode())
                         for t, _ in (BAD_LINES[n] for n in sorted(BAD_LINES))]
    path = _write(tmp_path / "bad.jsonl", content)
    monkeypatch.setattr(otlp, "BATCH_BYTES", 1)
    fast, tolerant, _ = _both(path, monkeypatch)
    _assert_same_chunks(fast, tolerant, at_least=1)
    reasons = _quarantined(fast)
    for number in (2, 3, 4, 5):  # the lines that are no request (the rest break span rules)
        assert re.search(BAD_LINES[number][1], reasons[number]), (number, reasons[number])
