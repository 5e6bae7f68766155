"""The OTLP reader's blocks (``otlp._blocks``) read into pooled buffers, against the file's
lines cut by hand: every line once, in order, with its number; each block the bytes left
over from the one before plus the next ``BLOCK_BYTES`` read, cut after its last newline; a
line over ``MAX_LINE_BYTES`` is a block of its own holding only its head. Blocks kept by the
caller are never overwritten by later ones, and blocks let go are read into the same buffers.
"""

from __future__ import annotations

import gzip
import io
import random

import pytest

from aiscale.loaders import _block_buffers, otlp

BOM = b"\xef\xbb\xbf"


def _expected(data: bytes, block: int, max_line: int) -> list[tuple[list[int], list[bytes], int]]:
    """(line numbers, lines, bytes) per block by the rule in the module docstring, with plain
    bytes read from memory and joined (no buffers)."""
    handle = io.BytesIO(data)
    out, number = [], 1
    head = handle.read(1 << 16)  # the reader looks at the first 64 KB first (a document or lines)
    pending = (head + handle.read(max(block - len(head), 0))).removeprefix(BOM)
    while pending:
        more = handle.read(block)
        end = pending.rfind(b"\n") + 1 if more else len(pending)
        if end == 0 and len(pending) + len(more) > max_line:  # one overlong line: skipped
            rest = pending + more
            while b"\n" not in rest and (chunk := handle.read(block)):
                rest += chunk
            cut = rest.find(b"\n")
            size = len(rest) if cut < 0 else cut + 1
            out.append(([number], [(pending + more)[:1024]], size))
            number += 1
            pending = rest[size:] or handle.read(block)
            continue
        if end == 0:
            pending += more
            continue
        lines = pending[:end].splitlines(keepends=True)
        out.append((list(range(number, number + len(lines))), lines, end))
        number += len(lines)
        pending = pending[end:] + more
    return out


def _got(path) -> list[tuple[list[int], list[bytes], int]]:
    blocks = list(otlp._blocks(path))  # all kept: a reused buffer would change earlier blocks
    return [(numbers.tolist(), [bytes(data[offsets[i]:offsets[i + 1]]) for i in range(len(numbers))],
             int(sizes.sum())) for numbers, offsets, data, sizes in blocks]


def _file(rng: random.Random, tmp_path, name: str) -> bytes:
    lines = [b'{"resourceSpans":[' + b"x" * rng.choice([5, 90, 700, 3000, 9000]) + b"]}"
             for _ in range(rng.randint(1, 50))]
    data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
    if rng.random() < 0.3:
        data = BOM + data
    (tmp_path / name).write_bytes(data)
    return data


@pytest.mark.parametrize("block", [1, 700, 4096, 1 << 16])
def test_blocks_are_the_files_lines_cut_by_the_rule(tmp_path, monkeypatch, block):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", block)
    monkeypatch.setattr(otlp, "MAX_LINE_BYTES", 5000)
    rng = random.Random(block)
    for k in range(12):
        data = _file(rng, tmp_path, f"f{k}.jsonl")
        got = _got(tmp_path / f"f{k}.jsonl")
        assert got == _expected(data, block, 5000)
        kept = [line for numbers, lines, size in got for line in lines if size <= 5000 or len(lines) > 1]
        assert [n for numbers, *_ in got for n in numbers] == list(range(1, len(got and [
            n for numbers, *_ in got for n in numbers]) + 1))
        if all(size <= 5000 or len(lines) > 1 for _, lines, size in got):  # no line skipped
            assert b"".join(kept) == data.removeprefix(BOM)


def test_gzip_gives_the_same_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 2048)
    data = _file(random.Random(5), tmp_path, "plain.jsonl")
    (tmp_path / "packed.jsonl.gz").write_bytes(gzip.compress(data))
    assert _got(tmp_path / "packed.jsonl.gz") == _got(tmp_path / "plain.jsonl")


def test_blocks_let_go_are_read_into_the_same_buffers(tmp_path, monkeypatch):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 4096)
    made, take = [], _block_buffers.BlockBuffers._take

    def counted(pool, need):  # a buffer made, not taken from the pool
        free = len(pool._free)
        base = take(pool, need)
        made.extend([1] if len(pool._free) == free else [])
        return base

    monkeypatch.setattr(_block_buffers.BlockBuffers, "_take", counted)
    lines = [b'{"resourceSpans":[' + b"y" * 300 + b"]}\n"] * 400  # 128 KB: 64 KB first, then 4 KB ones
    (tmp_path / "f.jsonl").write_bytes(b"".join(lines))
    count = sum(len(numbers) for numbers, *_ in otlp._blocks(tmp_path / "f.jsonl"))  # each dropped
    assert count == 400
    assert len(made) <= 2  # the first block's buffer, and one while the generator holds the last
    made.clear()
    blocks = list(otlp._blocks(tmp_path / "f.jsonl"))
    assert sum(len(block[0]) for block in blocks) == 400 and len(blocks) > 10
    assert len(made) == len(blocks)  # every block kept: each its own buffer
