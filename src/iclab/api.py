"""The Python API: the same verbs as the command line.

>>> import iclab
>>> run = iclab.run("induction-heads", preset="cpu", overrides={"train.steps": 500})
>>> iclab.results("select model, max(value) from metrics where metric = 'induction_score' group by model")
>>> iclab.list_runs(status="failed")  # a DataFrame: study, run, status, created, preset, model, headline, path
>>> iclab.probe_checkpoints(run.path, "induction")  # a probe over the run's saved checkpoints
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from iclab.config import to_yaml
from iclab.runs.results import query
from iclab.runs.store import list_runs as _list_runs
from iclab.runs.run import Run
from iclab.studies import get_study
from iclab.studies.execute import execute, rebuild_report
from iclab.studies.execute import resume as _resume
from iclab.studies.history import probe_checkpoints
from iclab.train import distributed


def run(study: str, preset: str = "cpu", overrides: dict[str, Any] | None = None, model: str | None = None,
        out: str | Path = "runs") -> Run:
    """Run ``study`` with ``preset`` and ``overrides`` (dotted keys); returns the finished Run.

    ``model`` scores a pretrained causal LM (name or path) instead of training one.
    The run directory is ``out/<study>/<run-id>``; it is made only once the config, the
    model path and the memory estimate have passed, so a refused run leaves nothing behind.
    """
    spec = get_study(study)
    cfg = spec.load_config(preset, overrides)
    spec.preflight(cfg, model)  # a missing model or a config that cannot fit: refused before anything is written
    distributed.init()  # under torchrun: rank 0 makes the run directory and tells the others
    processes = distributed.ranks().size
    meta = {"preset": preset, "model": model, "overrides": overrides or {}, "pid": os.getpid(),
            **({"processes": processes} if processes > 1 else {})}
    path = distributed.on_main(lambda: Run.create(out, study, to_yaml(cfg), meta).path)
    return execute(Run(path), cfg, model)


def resume(path: str | Path) -> Run:
    """Continue the run at ``path`` from its last checkpoints, with its saved config."""
    return _resume(path)


def report(path: str | Path) -> Path:
    """Rebuild ``report.html`` (and every figure) of the run at ``path`` from its stored results."""
    return rebuild_report(path)


def results(sql: str, root: str | Path = "runs"):
    """Run SQL over all runs under ``root`` (views ``metrics`` and ``runs``); returns a pandas
    DataFrame. A damaged file is named in a :class:`~iclab.errors.DamagedFileWarning` and
    left out; the SQL cannot read or write files."""
    return query(sql, root)


def list_runs(root: str | Path = "runs", study: str | None = None, status: str | None = None):
    """The runs under ``root`` (newest first) as a pandas DataFrame: study, run, status,
    created, preset, model, headline (see :func:`iclab.runs.store.headline`) and path; what
    ``iclab runs`` prints. (``iclab.runs`` is the package of run directories.)"""
    return _list_runs(root, study=study, status=status)
