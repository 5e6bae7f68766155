"""The trace store: canonical tables as Parquet parts named by a manifest, loaded atomically, read with DuckDB."""
