"""The data lake: Parquet tables per log type, the quarantine table, and SQL over them with DuckDB."""
