"""SQL over every run's results with DuckDB, confined to the runs root.

Three views are defined over a runs root:

- ``metrics``: every ``results.parquet`` row (study, run, probe, metric, value, layer,
  head, pos, step, model, label);
- ``checkpoint_probes``: the rows ``iclab probe`` measured on runs' saved checkpoints
  (``<run>/checkpoint-probes/*.parquet``, same columns as ``metrics``);
- ``runs``: one row per run from ``run.json`` (study, run, preset, created, status, model,
  error, sweep, trial, path) with its resolved config as text in ``config``.

Both are read into memory by :mod:`iclab.runs.store` (a damaged file is named in a
warning and skipped) and handed to DuckDB as Arrow tables. The connection is then shut
off from the file system (``enable_external_access = false``, configuration locked), so
the SQL a user types can read these views and nothing else: ``COPY ... TO`` cannot
write a file, ``read_csv('/etc/passwd')`` cannot read one, and no extension loads.
Results leave as a DataFrame (:func:`query`) or through ``iclab results --format/--output``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from iclab.errors import IclabError
from iclab.runs.store import read_metrics, runs_table, scan


def connect(root: str | Path = "runs") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``metrics``, ``checkpoint_probes`` and ``runs`` views over ``root``, and no
    access to files."""
    metrics, runs = read_metrics(root), runs_table(scan(root))
    history = read_metrics(root, "**/checkpoint-probes/*.parquet")
    # no Python variables as tables (replacement scans), no extensions fetched or loaded
    con = duckdb.connect(":memory:", config={"python_enable_replacements": False,
                                             "autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.register("metrics_table", metrics)
    con.register("runs_table", runs)
    con.register("history_table", history)
    con.execute("create view metrics as select * from metrics_table")
    con.execute("create view checkpoint_probes as select * from history_table")
    con.execute("create view runs as select * from runs_table")
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def query(sql: str, root: str | Path = "runs"):
    """Run ``sql`` over the views of ``root``; returns a pandas DataFrame.

    Raises IclabError (one line) for SQL that does not run, including any that tries to
    read or write a file.
    """
    import pandas as pd

    con = connect(root)
    try:
        cur = con.execute(sql)
        return cur.df() if cur.description else pd.DataFrame()
    except duckdb.PermissionException:
        raise IclabError("SQL error: iclab results reads only the views `metrics`, `checkpoint_probes` and `runs`; "
                         "files cannot be read "
                         "or written from a query (export with --format csv|json|parquet --output FILE)") from None
    except duckdb.Error as e:
        raise IclabError(f"SQL error: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
