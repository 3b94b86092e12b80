"""Writing a query's DataFrame to a file, atomically: table (text), CSV, JSON records or Parquet."""

from __future__ import annotations

from pathlib import Path

from iclab.atomic import atomic_write, atomic_write_text


def write_frame(df, path: str | Path, fmt: str) -> Path:
    """Write ``df`` to ``path`` as ``fmt`` (``table``, ``csv``, ``json``, ``parquet``); a reader
    sees the old file or the whole new one."""
    if fmt == "csv":
        return atomic_write_text(path, df.to_csv(index=False))
    if fmt == "json":
        return atomic_write_text(path, df.to_json(orient="records") + "\n")
    if fmt == "parquet":
        return atomic_write(path, lambda p: df.to_parquet(p, index=False))
    if fmt == "table":
        return atomic_write_text(path, df.to_string(index=False) + "\n")
    raise ValueError(f"unknown format {fmt!r}")
