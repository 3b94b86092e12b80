"""Pieces every study's report shares: the training curves section, a sweep's trial summaries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iclab.figures import training_curves
from iclab.rows import Rows
from iclab.runs.report import Figure, Section
from iclab.runs.run import Run
from iclab.runs.store import disk_text


def training_section(run: Run, rows: Rows) -> Section | None:
    """Loss, learning rate and gradient norm over training, one line per model trained (the
    ``log`` rows); None when nothing was trained here."""
    log = rows.where(probe="log")
    if not log:
        return None
    curves = {m: {metric: log.where(model=m, metric=metric).series("step") for metric in ("loss", "lr", "grad_norm")}
              for m in log.unique("model")}
    speed = rows.where(probe="speed", metric="tokens_per_s")
    points = min(len(c["loss"][0]) for c in curves.values())
    text = (f"{points} points per model (train.log_every). Mean throughput: "
            + ", ".join(f"{m} {speed.where(model=m).values().mean():,.0f} tokens/s" for m in curves) + ".")
    disk = run.meta.get("checkpoints") or {}
    n, size = disk.get("count", 0), disk.get("bytes", 0)
    if n:  # what train.keep_checkpoints costs, for probes over the run's history (iclab probe)
        text += f" Checkpoints kept: {disk_text(n, size)} ({size / 1e6:,.1f} MB in all)."
    fig = run.save_figure(training_curves(curves), "training_curves")
    return Section("Training", text, figures=[Figure(fig, "Training loss (mean over each logging interval), "
                                                          "learning rate and gradient norm against the step.")])


def trial_summaries(trials: list, summarise: Callable[[Any], dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """``{trial name: summarise(trial)}`` over a sweep's trials, leaving out those it gives None
    (a trial that has not finished measuring)."""
    return {t.name: s for t in trials if (s := summarise(t)) is not None}
