"""The OTLP load's two ways of reading ids and look-ups give the same rows.

Plain hex ids are read in NumPy (:mod:`aiscale.loaders._otlp_ids`); every other id (base64,
upper case, another length, not hex, blank) goes to the SQL macro ``otel_id``. Look-up keys
no span of a block has get no columns and are written as nulls in the mapping query.
``otlp.COUNTS`` says which way each id went and how many keys each block lacked; each test asserts the way it meant to exercise
and that the load equals the loader at ``PREVIOUS`` (all ids through ``otel_id``, every key
a column), to the row, the quarantine record and the facts.
"""

from __future__ import annotations

import base64
import json
import random

import duckdb
import pyarrow as pa
import pytest
from test_loader_otlp import _line, _span
from test_loader_otlp_equivalence import assert_same, previous  # noqa: F401 (a fixture)

from aiscale.loaders import otlp
from aiscale.loaders._otlp_ids import hex_ids
from aiscale.loaders._otlp_sql import MACROS, lookup_keys
from aiscale.sim.simulate import simulate_to

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN_IDS = ["00f067aa0ba902b7", "00F067AA0BA902B7", "0000000000000000", "",
            base64.b64encode(bytes.fromhex("00f067aa0ba902b7")).decode(), "00f067aa0ba902", "zzf067aa0ba902b7",
            "00f067aa0ba902b7\u00e9", "\u00e900f067aa0ba902b", " 00f067aa0ba902b", "AAAAAAAAAAA=", None]


def _ways(run, counts: tuple[str, str] = ("ids", "ids_in_duckdb")) -> tuple[int, int]:
    """How much ``counts`` (of ``otlp.COUNTS``) grew while ``run()`` ran."""
    before = otlp.COUNTS.copy()
    run()
    return tuple(otlp.COUNTS[name] - before[name] for name in counts)


def test_hex_ids_equal_the_sql_macro_on_every_kind_of_id():
    con = duckdb.connect()
    con.execute(MACROS)
    for nbytes, ids in ((8, SPAN_IDS), (16, [TRACE, TRACE.upper(), "0" * 32, TRACE[:-1] + "g",
                                              base64.b64encode(bytes.fromhex(TRACE)).decode(), None])):
        read, done = hex_ids(pa.array(ids, pa.string()), nbytes)
        macro = [con.execute(f"SELECT otel_id(?::VARCHAR, {nbytes})", [x]).fetchall()[0][0] for x in ids]
        assert done.any() and not done.all()  # both ways are taken on this list
        for x, ours, theirs, here in zip(ids, read.to_pylist(), macro, done, strict=True):
            if here:
                assert ours == theirs, x


def test_hex_ids_read_a_sliced_array():
    read, done = hex_ids(pa.array(SPAN_IDS, pa.string()).slice(1, 3), 8)
    assert read.to_pylist() == ["00f067aa0ba902b7", None, None] and done.tolist() == [True, True, True]


@pytest.mark.parametrize("mix", ["lower", "zeros", "upper", "gaps", "odd"])
def test_hex_ids_equal_the_sql_macro_on_long_arrays(mix):
    """Each shortcut of ``hex_ids`` (ids all lowercase hex and back to back, some all zeros,
    some uppercase, nulls and empty ids between them, ids of other kinds) against ``otel_id``."""
    rng = random.Random(mix)
    for nbytes in (8, 16):
        ids = [bytes(rng.randrange(256) for _ in range(nbytes)).hex() for _ in range(3000)]
        if mix != "lower":
            ids[::97] = ["0" * 2 * nbytes] * len(ids[::97])
        if mix in ("upper", "odd"):
            ids[5::11] = [x.upper() for x in ids[5::11]]
        if mix in ("gaps", "odd"):
            ids[3::13] = [rng.choice([None, ""]) for _ in ids[3::13]]
        if mix == "odd":
            ids[7::17] = [rng.choice(["g" * 2 * nbytes, "a" * (2 * nbytes - 1), " " + "a" * (2 * nbytes - 1)])
                          for _ in ids[7::17]]
        array = pa.array(ids, pa.string()).slice(1)
        read, done = hex_ids(array, nbytes)
        con = duckdb.connect()
        con.execute(MACROS)
        con.register("ids", pa.table({"x": array}))
        macro = con.sql(f"SELECT otel_id(x, {nbytes}) AS id FROM ids").to_arrow_table().column("id").to_pylist()
        assert done.sum() > 2000 and (done.all() == (mix != "odd"))
        assert [m if d else None for m, d in zip(macro, done, strict=True)] == read.to_pylist()


def test_a_simulated_file_reads_every_id_in_numpy_and_loads_as_before(previous, tmp_path):  # noqa: F811
    simulate_to(tmp_path / "sim", 150, seed=11, format="otlp")
    path = tmp_path / "sim" / "otlp-traces.jsonl"
    ids, in_duckdb = _ways(lambda: list(otlp.read(path)))
    assert ids > 0 and in_duckdb == 0
    found = assert_same(previous, path, tmp_path / "compare")
    assert found["spans"] > 0


def test_ids_otel_id_reads_load_as_before_in_each_block(previous, tmp_path, monkeypatch):  # noqa: F811
    """Blocks of hex ids only, blocks with other ids, and a block with a bad line, in one file."""
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}
    hex_lines = [_line(_span(f"{i:016x}", {**chat, "x.pad": "p" * 20_000}, traceId=f"{i:032x}"))
                 for i in range(1, 13)]
    odd = [_line(_span(s, chat, traceId=t, parentSpanId=p)) for s, t, p in (
        (base64.b64encode(bytes.fromhex("00000000000000a1")).decode(), TRACE, "0000000000000000"),
        ("00000000000000A2", TRACE.upper(), base64.b64encode(bytes.fromhex("00000000000000a1")).decode()),
        ("a3", base64.b64encode(bytes.fromhex(TRACE)).decode(), ""),
        ("zz000000000000a4", TRACE, "  "))]
    lines = [*hex_lines[:6], *odd, "{\"resourceSpans\": [", *hex_lines[6:]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")  # 250 KB: blocks of 64 KB, hex only or not
    for module in (otlp, previous["otlp"]):
        monkeypatch.setattr(module, "BLOCK_BYTES", 1 << 16)
    con = otlp._connect()
    blocks = list(otlp._blocks(path))
    per_block = [_ways(lambda b=b: list(otlp._query_block(con, *b))) for b in blocks]
    other = {i for i, (_, in_duckdb) in enumerate(per_block) if in_duckdb}
    assert len(blocks) >= 3 and other and len(other) < len(blocks)  # both ways, in their blocks
    assert all(ids > 0 for ids, _ in per_block)
    found = assert_same(previous, path, tmp_path / "compare")
    assert found["quarantined"] == 1 and found["spans"] == len(hex_lines) + len(odd)


def test_a_block_without_any_looked_up_key_loads_as_before(previous, tmp_path, monkeypatch):  # noqa: F811
    """One block has none of the mapping's keys (every look-up written as a null), the next has
    OpenInference, OpenLLMetry and deprecated GenAI keys."""
    bare = [_line(_span(f"{i:016x}", {"x.custom": f"v{i}" + "p" * 4000})) for i in range(1, 20)]
    keyed = [_line(_span("00000000000000b1", {"openinference.span.kind": "LLM", "llm.model_name": "m",
                                              "llm.token_count.prompt": 7, "llm.token_count.completion": 2})),
             _line(_span("00000000000000b2", {"traceloop.span.kind": "tool", "traceloop.entity.name": "t",
                                              "traceloop.entity.input": json.dumps({"q": 1})})),
             _line(_span("00000000000000b3", {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                                              "gen_ai.usage.prompt_tokens": 4,
                                              "gen_ai.usage.completion_tokens": 1}))]
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join([*bare, *keyed]) + "\n")
    for module in (otlp, previous["otlp"]):
        monkeypatch.setattr(module, "BLOCK_BYTES", 1 << 16)
    blocks = list(otlp._blocks(path))  # the first block (64 KB) has none of the keys
    assert len(blocks) == 2 and b"llm." not in bytes(blocks[0][2]) and b"llm." in bytes(blocks[1][2])
    con = otlp._connect()
    absent = [_ways(lambda b=b: list(otlp._query_block(con, *b)), ("blocks", "keys_absent"))[1]
              for b in blocks]
    assert absent[0] == len(lookup_keys()) and 0 < absent[1] < absent[0]  # all keys null, then some
    found = assert_same(previous, path, tmp_path / "compare")
    assert found["spans"] == len(bare) + len(keyed)


def test_a_bad_line_among_good_blocks_loads_as_before(previous, tmp_path, monkeypatch):  # noqa: F811
    simulate_to(tmp_path / "sim", 100, seed=3, format="otlp")
    lines = (tmp_path / "sim" / "otlp-traces.jsonl").read_bytes().splitlines()
    cut = len(lines) // 2
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join([*lines[:cut], lines[cut][:200], *lines[cut:]]) + b"\n")
    for module in (otlp, previous["otlp"]):  # a block a line
        monkeypatch.setattr(module, "BLOCK_BYTES", 1 << 12)
    assert len(list(otlp._blocks(path))) >= 4
    found = assert_same(previous, path, tmp_path / "compare")
    assert found["quarantined"] == 1 and found["spans"] > 0
