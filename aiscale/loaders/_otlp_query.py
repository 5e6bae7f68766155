"""Running the OTLP loader's queries over Arrow tables (used by the ``_otlp_*`` modules).

:func:`in_order` runs a query over Arrow tables registered by name, with its rows in their
input's order (the loader's connections otherwise run without that order), as a
:func:`relation` made once per thread and connection.

Examples
--------
>>> import duckdb, pyarrow as pa
>>> in_order(duckdb.connect(), "SELECT x * 2 AS y FROM t", t=pa.table({"x": [3, 1, 2]})).column("y").to_pylist()
[6, 2, 4]
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def in_order(con: duckdb.DuckDBPyConnection, query: str, **tables: pa.Table) -> pa.Table:
    """The result of ``query`` over ``tables`` (registered by name for it), rows in their order.

    The OTLP loader's connections run with ``preserve_insertion_order = false``; a step whose
    output lines up row for row with its input sets it for its one query.
    """
    for name, table in tables.items():
        con.register(name, table)
    try:
        con.execute("SET preserve_insertion_order = true")
        return relation(con, query).to_arrow_table()
    finally:
        con.execute("SET preserve_insertion_order = false")
        for name in tables:
            con.unregister(name)


_KEPT = threading.local()  # each mapping thread runs on its own connection
RELATIONS_KEPT = 64


def relation(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyRelation:
    """``query`` as a relation of ``con``, made once per thread and connection.

    A relation reads its tables by name each time it runs, so the next block's tables,
    registered under the same names, are what it reads; making one binds the query (~13 ms
    for the spans query, 16 times per million spans), and running it binds it again. A
    thread keeps the last :data:`RELATIONS_KEPT` of one connection, the last it ran on (a
    connection it no longer uses is let go when it runs on another).

    >>> import duckdb, pyarrow as pa
    >>> con = duckdb.connect()
    >>> [in_order(con, "SELECT max(x) AS s FROM t", t=pa.table({"x": xs})).column("s")[0].as_py()
    ...  for xs in ([1, 2], [3, 4, 5])]
    [2, 5]
    >>> relation(con, "SELECT 1 AS x") is relation(con, "SELECT 1 AS x")
    True
    >>> relation(con, "SELECT 1 AS x") is relation(duckdb.connect(), "SELECT 1 AS x")
    False
    """
    con_kept = getattr(_KEPT, "relations", None)
    if con_kept is None or con_kept[0] is not con:  # a thread's connection: its relations only
        con_kept = _KEPT.relations = (con, {})
    kept = con_kept[1]
    if query not in kept:
        if len(kept) >= RELATIONS_KEPT:
            kept.pop(next(iter(kept)))  # the oldest
        kept[query] = con.sql(query)
    return kept[query]

