"""Storage: the write-ahead log and the embedded DuckDB store."""
