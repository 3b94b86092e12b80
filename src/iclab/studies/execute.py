"""Executing a study on a run directory: measure, then report; failures recorded in run.json.

Used by the Python API and the CLI (:mod:`iclab.api`) and by sweeps (each trial is a run
directory executed here), so every run is executed the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from pathlib import Path

import torch

from iclab.errors import IclabError
from iclab.runs.report import render
from iclab.runs.run import Run
from iclab.runs.store import checkpoint_disk
from iclab.studies import get_study
from iclab.train import distributed


def execute(run: Run, cfg, model: str | None = None) -> Run:
    """Measure and report the study of ``run`` with ``cfg``; the run ends ``done`` or ``failed``.

    A failure is recorded in ``run.json`` (status, error, traceback) and raised. Under
    ``torchrun`` every process measures (they train together) and rank 0 alone writes the
    run; the others measure into a scratch copy (:class:`FollowerRun`).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars only
    hf_logging.set_verbosity_error()  # notices about HF internals (e.g. "loss_type=None") are not iclab's news
    if not distributed.init().main:
        return _follow(run, cfg, model)
    study = get_study(run.meta["study"])
    if run.meta.get("model") != model:
        run.update_meta(model=model)  # the report reads which path ran from run.json
    torch.manual_seed(cfg.seed)  # the one place seeds are set; models and data take explicit seeds
    try:
        study.measure(cfg, run, model)
        n, size = checkpoint_disk(run.path)  # kept in run.json: a rebuilt report reads it there
        run.update_meta(checkpoints={"count": n, "bytes": size})
        study.report(cfg, run).save(run.path)
        run.update_meta(status="done")
        render(run.path)  # again, so that the page's status line says done, not running
    except BaseException as e:
        run.update_meta(status="failed", error=f"{type(e).__name__}: {e}",
                        traceback=traceback.format_exc(limit=20))
        raise
    return run


class FollowerRun(Run):
    """The run a rank other than 0 measures into: a scratch copy of the run directory (its
    config and ``run.json``) that reads the real run's checkpoints. What the study writes there
    is deleted with :meth:`close`."""

    def __init__(self, run: Run):
        scratch = Path(tempfile.mkdtemp(prefix=f"iclab-rank{distributed.ranks().rank}-"))
        for name in ("config.yaml", "run.json"):
            shutil.copy(run.path / name, scratch / name)
        super().__init__(scratch)
        self.real = run

    def ckpt_dir(self, name: str) -> Path:
        return self.real.ckpt_dir(name)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _follow(run: Run, cfg, model: str | None) -> Run:
    """A rank other than 0: train along with rank 0, writing nothing into ``run``."""
    follower = FollowerRun(run)
    try:
        torch.manual_seed(cfg.seed)
        get_study(run.meta["study"]).measure(cfg, follower, model)
    finally:
        follower.close()
    return run


def resume(path: str | Path) -> Run:
    """Continue the run at ``path`` from its last checkpoints, with its saved config."""
    run = Run.open(path)
    meta = run.meta
    study = get_study(meta["study"])
    cfg = study.config_of(run)
    study.preflight(cfg, meta.get("model"))  # the machine may be smaller than the one the run began on
    if distributed.init().main:
        run.remove_temporary()  # half-written files of a killed process
        run.update_meta(status="running", pid=os.getpid())
    distributed.barrier()  # the others read checkpoints once the half-written ones are gone
    return execute(run, cfg, meta.get("model"))


def rebuild_report(path: str | Path) -> Path:
    """Write ``report.json`` and ``report.html`` of the run at ``path`` anew, from its stored
    config, rows and arrays (no model is loaded)."""
    run = Run.open(path)
    meta = run.meta
    if meta.get("status") != "done":
        raise IclabError(f"run {path} has status {meta.get('status')!r}"
                         + (f" ({meta['error']})" if meta.get("error") else "")
                         + f": its results are incomplete; finish it with `iclab resume {path}` first")
    if not (run.path / "results.parquet").is_file():
        raise IclabError(f"{run.path / 'results.parquet'} is missing: measure again with iclab resume {path}")
    study = get_study(meta["study"])
    return study.report(study.config_of(run), run).save(run.path)
