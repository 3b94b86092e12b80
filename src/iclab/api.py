"""The Python API: the same verbs as the command line.

>>> import iclab
>>> run = iclab.run("induction-heads", preset="cpu", overrides={"train.steps": 500})
>>> iclab.results("select model, max(value) from metrics where metric = 'induction_score' group by model")
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

import torch
import yaml

from iclab.config import load_config, to_yaml, validate
from iclab.runs.report import render
from iclab.runs.results import query
from iclab.runs.run import Run
from iclab.studies import get_study


def _execute(study_name: str, run: Run, cfg, model: str | None) -> Run:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars only
    _, run_study = get_study(study_name).load()
    torch.manual_seed(cfg.seed)  # the one place seeds are set; models and data take explicit seeds
    try:
        report = run_study(cfg, run, model)
        run.update_meta(status="done")
        report.save(run.path)
    except BaseException as e:
        run.update_meta(status="failed", error=f"{type(e).__name__}: {e}",
                        traceback=traceback.format_exc(limit=20))
        raise
    return run


def run(study: str, preset: str = "cpu", overrides: dict[str, Any] | None = None, model: str | None = None,
        out: str | Path = "runs") -> Run:
    """Run ``study`` with ``preset`` and ``overrides`` (dotted keys); returns the finished Run.

    ``model`` scores a pretrained causal LM (name or path) instead of training one.
    The run directory is ``out/<study>/<run-id>``.
    """
    config_cls, _ = get_study(study).load()
    cfg = load_config(config_cls, study, preset, overrides)
    r = Run.create(out, study, to_yaml(cfg), {"preset": preset, "model": model, "overrides": overrides or {},
                                              "pid": os.getpid()})
    return _execute(study, r, cfg, model)


def resume(path: str | Path) -> Run:
    """Continue the run at ``path`` from its last checkpoints, with its saved config."""
    r = Run.open(path)
    meta = r.meta
    config_cls, _ = get_study(meta["study"]).load()
    cfg = validate(config_cls, yaml.safe_load(r.config_yaml) or {}, f"{path}/config.yaml")
    r.update_meta(status="running", pid=os.getpid())
    return _execute(meta["study"], r, cfg, meta.get("model"))


def report(path: str | Path) -> Path:
    """Rebuild ``report.html`` of the run at ``path``."""
    return render(Run.open(path).path)


def results(sql: str, root: str | Path = "runs") -> tuple[list[str], list[tuple]]:
    """Run SQL over all runs under ``root`` (views ``metrics`` and ``runs``)."""
    return query(sql, root)
