"""The Spark path: the same Ibis rollup on PySpark, for stores that outgrow one machine.

Needs the ``spark`` extra (``pip install 'aiscale[spark]'``) and a Java runtime. The master
comes from ``AISCALE_SPARK_MASTER`` (default ``local[2]``); any ``spark.*`` setting can be
passed through ``AISCALE_SPARK_CONF`` as ``key=value,key=value`` (e.g. an object-store
path's credentials). The driver reads the store's manifest from its folder; when the
executors see the same store at another address (a bucket mounted on the driver),
``AISCALE_SPARK_STORE_URI`` (e.g. ``s3a://bucket/store``) replaces the folder in the paths
of the Parquet parts Spark reads.

Examples
--------
>>> import os
>>> spark_conf({"AISCALE_SPARK_CONF": "spark.executor.memory=4g"})["spark.executor.memory"]
'4g'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import pandas as pd

from aiscale import schema
from aiscale.facts.on_duckdb import lost_arrow, rates_arrow
from aiscale.facts.rollup import rollup

_INSTALL_HINT = ("The Spark engine requires pyspark. You can install it with "
                 "`pip install 'aiscale[spark]'` (and a Java runtime, e.g. `apt-get install default-jre-headless`).")


def spark_conf(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Return the Spark settings aiscale uses: UTC session time, no UI, plus user overrides."""
    conf = {
        "spark.master": environ.get("AISCALE_SPARK_MASTER", "local[2]"),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        "spark.driver.memory": "2g",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    for item in filter(None, environ.get("AISCALE_SPARK_CONF", "").split(",")):
        key, _, value = item.partition("=")
        conf[key.strip()] = value.strip()
    return conf


def spark_paths(store_root: str, parts: list[str],
                environ: Mapping[str, str] = os.environ) -> list[str]:
    """The part paths as the cluster reads them (``AISCALE_SPARK_STORE_URI`` replaces the root).

    Examples
    --------
    >>> spark_paths("/mnt/s", ["/mnt/s/spans/a.parquet"], {"AISCALE_SPARK_STORE_URI": "s3a://b/s/"})
    ['s3a://b/s/spans/a.parquet']
    """
    uri = environ.get("AISCALE_SPARK_STORE_URI", "").rstrip("/")
    root = str(store_root).rstrip("/")
    if not uri:
        return parts
    return [uri + p[len(root):] if p.startswith(root + "/") else p for p in parts]


def spark_session():
    """Return (creating once) the SparkSession configured by :func:`spark_conf`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from exc
    # Python workers (the Spark load's executors) run the driver's Python unless told otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("aiscale")
    for key, value in spark_conf().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def rollup_on_spark(parts: dict[str, list[str]], rates: pd.DataFrame | None, *, root: str,
                    dedupe: bool = True, lost: pd.DataFrame | None = None) -> pd.DataFrame:
    """Run :func:`aiscale.facts.rollup.rollup` on Spark over a store's Parquet parts.

    ``parts`` maps ``spans`` and ``traces`` to file paths under the store folder ``root``
    (executors may read them at another URI, see :func:`spark_paths`).
    """
    import ibis

    session = spark_session()
    con = ibis.pyspark.connect(session)
    tables = {}
    for name in ("spans", "traces"):
        files = parts.get(name) or []
        if files:
            frame = session.read.parquet(*spark_paths(root, files))
        else:
            frame = session.createDataFrame(schema.empty(name).astype(object).head(0), _spark_schema(name))
        frame.createOrReplaceTempView(f"aiscale_{name}")
        tables[name] = con.table(f"aiscale_{name}")
    rates_t = None
    if rates is not None and len(rates):
        session.createDataFrame(rates_arrow(rates).to_pandas()).createOrReplaceTempView("aiscale_rates")
        rates_t = con.table("aiscale_rates")
    lost_t = None
    if lost is not None and len(lost):
        session.createDataFrame(lost_arrow(lost).to_pandas()).createOrReplaceTempView("aiscale_lost")
        lost_t = con.table("aiscale_lost")
    return rollup(tables["spans"], tables["traces"], rates_t, dedupe=dedupe,
                  lost=lost_t).to_pyarrow().to_pandas()


def _spark_schema(table: str):
    from pyspark.sql import types as T

    mapping = {"string": T.StringType(), "int64": T.LongType(), "double": T.DoubleType(),
               "bool": T.BooleanType(), "timestamp[us, tz=UTC]": T.TimestampType()}
    return T.StructType([T.StructField(f.name, mapping[str(f.type)], True)
                         for f in schema.schema_of(table)])
