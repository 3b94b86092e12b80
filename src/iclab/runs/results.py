"""SQL over every run's results with DuckDB.

Two views are defined over a runs root:

- ``metrics``: every ``results.parquet`` row (study, run, probe, metric, value, layer,
  head, pos, step, model, label);
- ``runs``: one row per run from ``run.json`` (study, run, preset, created, status, ...)
  with its resolved config as text in ``config``.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from iclab.errors import IclabError
from iclab.rows import ARROW_SCHEMA


def connect(root: str | Path = "runs") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``metrics`` and ``runs`` views over ``root``."""
    root = Path(root)
    con = duckdb.connect()
    files = sorted(str(p) for p in root.glob("**/results.parquet"))
    if files:
        con.execute(f"create view metrics as select * from read_parquet({files!r}, union_by_name = true)")
    else:
        con.register("no_metrics", ARROW_SCHEMA.empty_table())
        con.execute("create view metrics as select * from no_metrics")
    runs = []
    for meta_path in sorted(root.glob("**/run.json")):
        meta = json.loads(meta_path.read_text())
        cfg = meta_path.with_name("config.yaml")
        runs.append({"study": meta.get("study"), "run": meta.get("run"), "preset": meta.get("preset"),
                     "created": meta.get("created"), "status": meta.get("status"), "model": meta.get("model"),
                     "path": str(meta_path.parent), "config": cfg.read_text() if cfg.is_file() else None})
    cols = ["study", "run", "preset", "created", "status", "model", "path", "config"]
    con.register("runs_table", pa.Table.from_pylist(runs) if runs else
                 pa.table({c: pa.array([], pa.string()) for c in cols}))
    con.execute("create view runs as select * from runs_table")
    return con


def query(sql: str, root: str | Path = "runs") -> tuple[list[str], list[tuple]]:
    """Run ``sql`` over the views; returns (column names, rows)."""
    con = connect(root)
    try:
        cur = con.execute(sql)
    except duckdb.Error as e:
        raise IclabError(f"SQL error: {str(e).splitlines()[0]}") from None
    cols = [d[0] for d in cur.description] if cur.description else []
    return cols, cur.fetchall()
