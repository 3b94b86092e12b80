"""The runs under a runs root, read once and defensively: a damaged file is named and skipped.

Every ``run.json`` below the root (runs and sweep trials alike) is a run. :func:`scan` reads
them with their ``config.yaml``, and :func:`read_metrics` reads every ``results.parquet``
whole. A file that cannot be read (a truncated Parquet file, a garbled ``run.json``) does
not stop the others: it is reported as a :class:`~iclab.errors.DamagedFileWarning` naming
the file, and left out (a run whose ``run.json`` is damaged is missing from the runs, its
rows, when readable, stay in the metrics).

:func:`list_runs` is the table ``iclab runs`` prints: study, run, status, created, preset,
model and a headline number per run (see :func:`headline`).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iclab.errors import DamagedFileWarning, IclabError
from iclab.rows import ARROW_SCHEMA
from iclab.runs.run import read_meta

#: columns of the ``runs`` view, in order
RUN_COLUMNS = ("study", "run", "preset", "created", "status", "model", "error", "sweep", "trial", "path", "config")


@dataclass(frozen=True)
class RunRecord:
    """One run found under a root: its directory, ``run.json`` and ``config.yaml`` text."""

    path: Path
    meta: dict[str, Any]
    config: str | None

    def row(self) -> dict[str, Any]:
        m = self.meta
        error = m.get("error")
        return {"study": m.get("study"), "run": m.get("run"), "preset": _text(m.get("preset")),
                "created": m.get("created"), "status": m.get("status"), "model": _text(m.get("model")),
                "error": str(error).splitlines()[0] if error else None, "sweep": _text(m.get("sweep")),
                "trial": _text(m.get("trial")), "path": str(self.path), "config": self.config}


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def check_root(root: str | Path) -> Path:
    """``root`` if it is a directory; IclabError in one line otherwise."""
    root = Path(root)
    if not root.exists():
        raise IclabError(f"runs root {str(root)!r} does not exist (give --root)")
    if not root.is_dir():
        raise IclabError(f"runs root {str(root)!r} is a file, not a directory (give --root)")
    return root


def damaged(problem: str) -> None:
    """Report a damaged file in one line (a warning: the query goes on without it)."""
    warnings.warn(DamagedFileWarning(f"{problem}; skipped"), stacklevel=3)


def _first_line(e: BaseException) -> str:
    text = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(e).strip())  # the path is said already
    return text.splitlines()[0] if text else type(e).__name__


def scan(root: str | Path) -> list[RunRecord]:
    """Every run under ``root`` whose ``run.json`` reads; the others are reported and skipped."""
    runs = []
    for meta_path in sorted(check_root(root).glob("**/run.json")):
        try:
            meta = read_meta(meta_path)
        except IclabError as e:
            damaged(str(e))
            continue
        cfg = meta_path.with_name("config.yaml")
        try:
            config = cfg.read_text(encoding="utf-8") if cfg.is_file() else None
        except (OSError, UnicodeDecodeError) as e:
            damaged(f"{cfg} cannot be read ({_first_line(e)})")
            config = None
        runs.append(RunRecord(meta_path.parent, meta, config))
    return runs


def read_metrics(root: str | Path, pattern: str = "**/results.parquet") -> pa.Table:
    """Every readable ``results.parquet`` under ``root`` (or file matching ``pattern``) as one
    table (columns of :data:`iclab.rows.ARROW_SCHEMA`; files with other columns are aligned by
    name)."""
    tables = []
    for path in sorted(check_root(root).glob(pattern)):
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowException) as e:
            damaged(f"{path} is damaged and cannot be read ({_first_line(e)})")
    if not tables:
        return ARROW_SCHEMA.empty_table()
    try:
        return pa.concat_tables([ARROW_SCHEMA.empty_table(), *tables], promote_options="permissive")
    except pa.ArrowException as e:
        raise IclabError(f"results under {root} cannot be read together: {str(e).splitlines()[0]}") from None


def runs_table(records: list[RunRecord]) -> pa.Table:
    """The ``runs`` view: one row per run, columns :data:`RUN_COLUMNS`, all text."""
    rows = [r.row() for r in records]
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in RUN_COLUMNS})


def headline(run_dir: Path) -> str:
    """One number that says how a run came out, by a generic rule: the first float of the first
    row of the first table in its ``report.json`` (``"L2 · best induction 0.91"``); without a
    report table, the number of result rows; "" when the run has neither."""
    try:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        for section in report.get("sections", []):
            for table in section.get("tables", []):
                if table.get("rows"):
                    row, cols = table["rows"][0], table["columns"]
                    for col, v in zip(cols, row):
                        if isinstance(v, float) and math.isfinite(v):
                            label = f"{row[0]} · " if not isinstance(row[0], (int, float)) else ""
                            return f"{label}{col} {v:.3g}"
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # no report, or not one this rule reads: fall back to the row count
    try:
        return f"{pq.read_metadata(run_dir / 'results.parquet').num_rows} rows"
    except (OSError, pa.ArrowException):
        return ""


def checkpoint_disk(run_dir: Path) -> tuple[int, int]:
    """(number of checkpoints, their bytes on disk) under ``run_dir/checkpoints``: what a
    checkpoint history (``train.keep_checkpoints``) costs."""
    n = size = 0
    for ckpt in run_dir.glob("checkpoints/*/step-*"):
        n += 1
        size += sum(f.stat().st_size for f in ckpt.iterdir() if f.is_file())
    return n, size


def disk_text(n: int, size: int) -> str:
    """``"12 × 1.6 MB"``: checkpoints and the size of one (their mean)."""
    if not n:
        return ""
    per = size / n
    unit = next((u for u, b in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)) if per >= b), "B")
    scale = {"GB": 1e9, "MB": 1e6, "kB": 1e3, "B": 1}[unit]
    return f"{n} × {per / scale:.3g} {unit}"


def list_runs(root: str | Path = "runs", study: str | None = None, status: str | None = None):
    """The runs under ``root`` as a pandas DataFrame, newest first: study, run, status, created,
    preset, model, headline (the error's first line for a failed run), checkpoints (how many,
    and the disk one takes: ``"12 × 1.6 MB"``), checkpoint_bytes (all of them), path; filtered
    by ``study`` and ``status`` when given."""
    import pandas as pd

    records = [r for r in scan(root) if (study is None or r.meta.get("study") == study)
               and (status is None or r.meta.get("status") == status)]
    records.sort(key=lambda r: str(r.meta.get("created") or ""), reverse=True)
    rows = []
    for r in records:
        row = r.row()
        head = headline(r.path) if row["status"] != "failed" or not row["error"] else row["error"][:80]
        n, size = checkpoint_disk(r.path)
        rows.append({**{k: row[k] for k in ("study", "run", "status", "created", "preset", "model")},
                     "headline": head, "checkpoints": disk_text(n, size), "checkpoint_bytes": size,
                     "path": row["path"]})
    cols = ["study", "run", "status", "created", "preset", "model", "headline", "checkpoints", "checkpoint_bytes",
            "path"]
    return pd.DataFrame(rows, columns=cols)
