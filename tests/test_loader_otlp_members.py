"""The ``otel.*`` members of the OTLP ``attributes`` JSON written per distinct value in Arrow,
against the SQL (DuckDB's ``to_json``) they replace, on random values."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from aiscale.loaders._otlp_members import text_member
from aiscale.loaders._otlp_pieces import Pieces
from aiscale.loaders._otlp_sql import MACROS, SPAN_KINDS

ODD = ['"', "\\", "\n", "\x01", "\x1f", "é", "😀", "a", "0", "1", "5", "6", "SPAN_KIND_SERVER"]
KIND = "CASE v " + " ".join(f"WHEN '{k}' THEN '{n}'" for k, n in SPAN_KINDS.items()) + " ELSE v END"


def _values(rng: random.Random, count: int) -> list:
    pool = [None, "", *ODD, *(rng.choice(ODD) + rng.choice(ODD) for _ in range(20))]
    return [rng.choice(pool) for _ in range(count)]


def _written(con, values: list, before: str, after: str, *, kinds: bool) -> list:
    pieces = Pieces()
    at = text_member(con, pieces, pa.array(values, pa.string()), before, after, kinds=kinds)
    empty = pieces.add(pa.array([""]))
    return pieces.joined(np.where(at >= 0, at, empty), np.ones(len(values), dtype=np.int64)).to_pylist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kinds", [True, False])
def test_members_are_what_the_sql_writes(seed, kinds):
    con = duckdb.connect()
    con.execute(MACROS)
    values = _values(random.Random(seed), 500)
    value = KIND if kinds else "nullif(v, '')"
    con.register("t", pa.table({"i": np.arange(len(values)), "v": pa.array(values, pa.string())}))
    expected = [text or "" for (text,) in con.execute(
        f"""SELECT '"m":' || to_json({value}) || ',' FROM t ORDER BY i""").fetchall()]
    assert _written(con, values, '"m":', ",", kinds=kinds) == expected


def test_members_of_all_null_values():
    con = duckdb.connect()
    assert _written(con, [None, None], "b", "a", kinds=False) == ["", ""]
    assert _written(con, [], "b", "a", kinds=True) == []
