"""Spans to trace facts: the Ibis rollup, run on DuckDB (default) or Spark, and time windows."""
