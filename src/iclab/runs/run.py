"""A run directory: resolved config, checkpoints, results table, figures, report.

::

    runs/<study>/<run-id>/
        config.yaml          the resolved config (what --set produced), saved first
        run.json             study, preset, created, status, model, seed
        checkpoints/<name>/  one folder per model trained (see iclab.train.checkpoint)
        results.parquet      long-format rows (iclab.rows) + study and run columns
        checkpoint-probes/   <probe>.parquet: rows of `iclab probe` over saved checkpoints
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
import os
import secrets
import time
import zipfile
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
        """A new run directory under ``root/study/`` with its config saved.

        Runs started at the same second get distinct ids: the id ends in a random suffix, and a
        directory that exists already is never reused (another suffix is drawn).
        """
        check_root(root)
        for _ in range(100):
            run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
            path = Path(root) / study / run_id
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.mkdir(exist_ok=False)  # never write into another run's directory
            except FileExistsError:
                continue
            return cls.create_at(path, study, config_yaml, {"run": run_id, **meta})
        raise IclabError(f"could not make a new run directory under {Path(root) / study}")

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
        """The run at ``path``; IclabError when it is not a run directory or its run.json is damaged."""
        run = cls(Path(path))
        if not run.path.exists():
            raise IclabError(f"{path} is not a run directory: it does not exist")
        if not run.path.is_dir():
            raise IclabError(f"{path} is not a run directory: it is a file")
        if not (run.path / "run.json").is_file() or not (run.path / "config.yaml").is_file():
            raise IclabError(f"{path} is not a run directory (no run.json / config.yaml)")
        run.meta  # noqa: B018 - a damaged run.json is named now, not halfway through a resume
        return run

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def meta(self) -> dict[str, Any]:
        """``run.json``; IclabError naming the file when it is damaged."""
        return read_meta(self.path / "run.json")

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.path / "run.json", json.dumps(meta, indent=2))

    def update_meta(self, **changes: Any) -> None:
        self.write_meta({**self.meta, **changes})

    @property
    def config_yaml(self) -> str:
        return (self.path / "config.yaml").read_text()

    def ckpt_dir(self, name: str) -> Path:
        return self.path / "checkpoints" / name

    def remove_temporary(self) -> list[Path]:
        """Delete what a writer killed mid-write left: ``.<name>.*.tmp`` files of
        :func:`iclab.atomic.atomic_write` and ``.tmp-*`` checkpoint folders. Only for a run no
        process is writing (a resume). Returns what was removed."""
        import shutil

        gone = [p for p in self.path.rglob(".*.tmp") if p.is_file()]
        gone += [p for p in (self.path / "checkpoints").glob("*/.tmp-*") if p.is_dir()]
        for p in gone:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return gone

    # --- results ---------------------------------------------------------------------
    def save_rows(self, rows: list[Row], path: Path | None = None) -> Path:
        """Write all ``rows`` as ``results.parquet`` (or ``path``; replacing it), with study and
        run columns."""
        meta = self.meta
        cols: dict[str, list] = {c: [] for c in ("study", "run", *ROW_COLUMNS)}
        for r in rows:
            d = asdict(r)
            cols["study"].append(meta["study"])
            cols["run"].append(meta["run"])
            for c in ROW_COLUMNS:
                cols[c].append(d[c])
        table = pa.Table.from_pydict(cols, schema=ARROW_SCHEMA)
        return atomic_write(path or self.path / "results.parquet", lambda p: pq.write_table(table, p))

    def load_rows(self, path: Path | None = None) -> Rows:
        """The rows of ``results.parquet`` (or of ``path``; empty if there is no such file)."""
        table = self._results_table(path)
        if table is None:
            return Rows()
        return Rows(Row(**{c: d[c] for c in ROW_COLUMNS}) for d in table.to_pylist())

    def to_pandas(self):
        """``results.parquet`` as a pandas DataFrame, one row per measurement, with the columns
        study, run, probe, metric, value, layer, head, pos, step, model, label (empty if the run
        has no results yet)."""
        table = self._results_table()
        return (table if table is not None else ARROW_SCHEMA.empty_table()).to_pandas()

    def _results_table(self, path: Path | None = None) -> pa.Table | None:
        path = path or self.path / "results.parquet"
        if not path.is_file():
            return None
        return read_results(path)

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
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise IclabError(f"{path} is damaged ({_first_line(e)}); measure again with iclab resume") from None

    # --- figures and report ----------------------------------------------------------
    def save_figure(self, fig, name: str) -> str:
        """Save a matplotlib figure as ``figures/<name>.png``; returns the relative path."""
        import matplotlib.pyplot as plt

        rel = f"figures/{name}.png"
        atomic_write(self.path / rel, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
        plt.close(fig)
        return rel


def check_root(root: str | Path) -> Path:
    """``root`` as a runs root: IclabError when it (or a folder above it) is a file or cannot be written."""
    root = Path(root)
    for p in (root, *root.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == root else f"is inside {p}, which is a file"
                raise IclabError(f"runs root {str(root)!r} {where}; give a directory (--out)")
            if not os.access(p, os.W_OK | os.X_OK):
                raise IclabError(f"runs root {str(root)!r} cannot be written ({p} is not writable)")
            break
    return root


def read_meta(path: Path) -> dict[str, Any]:
    """A run's ``run.json`` as a dict; IclabError naming the file when it is missing or damaged."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IclabError(f"{path} is missing: {path.parent} is not a run directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IclabError(f"{path} is damaged and cannot be read ({_first_line(e)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("study"), str):
        raise IclabError(f"{path} is damaged: it holds no run record (a mapping with a 'study')")
    return meta


def read_results(path: Path) -> pa.Table:
    """A ``results.parquet`` read whole; IclabError naming the file when it is damaged."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise IclabError(f"{path} is damaged and cannot be read ({_first_line(e)}); "
                         f"measure again with iclab resume {path.parent}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _savez(path: Path, data: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
        np.savez(f, **data)
