"""A run directory: resolved config, checkpoints, results table, figures, report.

::

    runs/<study>/<run-id>/
        config.yaml          the resolved config (what --set produced), saved first
        run.json             study, preset, created, status, model, seed
        checkpoints/<name>/  one folder per model trained (see iclab.train.checkpoint)
        results.parquet      long-format rows (iclab.rows) + study and run columns
        arrays/<name>.npz    arrays a report needs besides the rows (probe arrays, representations)
        figures/*.png
        report.json          sections of the report: text, tables, figures
        report.html          self-contained (figures inlined)

Every file is written atomically. A study's ``measure`` writes the rows and arrays; its
``report`` reads them back (and nothing else), so ``iclab report`` rebuilds every figure
without a model. A run that stops can be continued by ``iclab resume``: the study is
called again on the same directory, finished trainings load from their last checkpoint
and unfinished ones continue from theirs.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iclab.atomic import atomic_write, atomic_write_text
from iclab.errors import IclabError
from iclab.rows import ARROW_SCHEMA, ROW_COLUMNS, Row, Rows


class Run:
    """Handle on one run directory. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # --- creation and metadata -------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, study: str, config_yaml: str, meta: dict[str, Any]) -> "Run":
        """A new run directory under ``root/study/`` with its config saved."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        path = Path(root) / study / run_id
        path.mkdir(parents=True, exist_ok=False)  # never write into another run's directory
        return cls.create_at(path, study, config_yaml, {"run": run_id, **meta})

    @classmethod
    def create_at(cls, path: str | Path, study: str, config_yaml: str, meta: dict[str, Any]) -> "Run":
        """A run directory at ``path`` (e.g. a sweep's trial) with its config and run.json written.

        ``meta`` may set ``run`` (default: the directory name) and ``status`` (default "running").
        """
        run = cls(Path(path))
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.path / "config.yaml", config_yaml)
        run.write_meta({"study": study, "run": run.path.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "status": "running", **meta})
        return run

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        run = cls(Path(path))
        if not (run.path / "run.json").is_file() or not (run.path / "config.yaml").is_file():
            raise IclabError(f"{path} is not a run directory (no run.json / config.yaml)")
        return run

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "run.json").read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.path / "run.json", json.dumps(meta, indent=2))

    def update_meta(self, **changes: Any) -> None:
        self.write_meta({**self.meta, **changes})

    @property
    def config_yaml(self) -> str:
        return (self.path / "config.yaml").read_text()

    def ckpt_dir(self, name: str) -> Path:
        return self.path / "checkpoints" / name

    # --- results ---------------------------------------------------------------------
    def save_rows(self, rows: list[Row]) -> Path:
        """Write all ``rows`` as ``results.parquet`` (replacing it), with study and run columns."""
        meta = self.meta
        cols: dict[str, list] = {c: [] for c in ("study", "run", *ROW_COLUMNS)}
        for r in rows:
            d = asdict(r)
            cols["study"].append(meta["study"])
            cols["run"].append(meta["run"])
            for c in ROW_COLUMNS:
                cols[c].append(d[c])
        table = pa.Table.from_pydict(cols, schema=ARROW_SCHEMA)
        return atomic_write(self.path / "results.parquet", lambda p: pq.write_table(table, p))

    def load_rows(self) -> Rows:
        """The rows of ``results.parquet`` (empty if the run has none yet)."""
        path = self.path / "results.parquet"
        if not path.is_file():
            return Rows()
        return Rows(Row(**{c: d[c] for c in ROW_COLUMNS}) for d in pq.read_table(path).to_pylist())

    # --- arrays ----------------------------------------------------------------------
    def save_arrays(self, name: str, **arrays) -> Path:
        """Save named arrays as ``arrays/<name>.npz`` (replacing it); scalars become 0-d arrays."""
        data = {k: np.asarray(v) for k, v in arrays.items()}
        return atomic_write(self.path / "arrays" / f"{name}.npz", lambda p: _savez(p, data))

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays saved under ``name``; raises IclabError naming the file if it is missing."""
        path = self.path / "arrays" / f"{name}.npz"
        if not path.is_file():
            raise IclabError(f"{path} is missing: the run did not finish measuring (iclab resume {self.path})")
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    # --- figures and report ----------------------------------------------------------
    def save_figure(self, fig, name: str) -> str:
        """Save a matplotlib figure as ``figures/<name>.png``; returns the relative path."""
        import matplotlib.pyplot as plt

        rel = f"figures/{name}.png"
        atomic_write(self.path / rel, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
        plt.close(fig)
        return rel


def _savez(path: Path, data: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
        np.savez(f, **data)
