"""The label-semantics sweep report: the scale curve over the models of every trial.

A sweep over models (``iclab sweep label-semantics --grid 'models=[[a],[b],[c]]'``, one model a
trial) gives the same curve as one run with ``models: [a, b, c]``: accuracy of each condition,
mean over the sets, against the model's parameters, at the largest k every trial measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from iclab.figures import short_name
from iclab.runs.report import Figure, Section, Table
from iclab.runs.run import Run
from iclab.studies.label_semantics import figures as figs
from iclab.studies.label_semantics.report import NAMES, Results


def sweep_report(trials: list, save_figure: Callable[[Any, str], str]) -> list[Section]:
    runs = [Results(Run(Path(t.path))) for t in trials]
    runs = [r for r in runs if r.shots and not r.steps]  # pretrained models only
    if not runs:
        return []
    K = min(r.shots[-1] for r in runs)
    conditions = [c for c in runs[0].conditions if all(c in r.conditions for r in runs)]
    models, sizes, chance = [], [], []
    lines: dict[str, list[float]] = {c: [] for c in conditions}
    for r in runs:
        for m, size in zip(r.models, r.sizes):
            if m in models:
                continue
            models.append(m)
            sizes.append(size)
            chance.append(r.mean_chance())
            for c in conditions:
                lines[c].append(r.mean(m, c, K))
    table = Table(["model", "parameters", *[NAMES[c] for c in conditions]],
                  [[short_name(m), int(s), *[lines[c][i] for c in conditions]] for i, (m, s) in
                   enumerate(zip(models, sizes))],
                  caption=f"Accuracy at k = {K} (zero-shot: k = 0), mean over the sets.")
    sections = [Section("Accuracy by model", tables=[table])]
    if len(models) > 1:
        fig = save_figure(figs.scale_curve(np.array(sizes), {c: np.array(v) for c, v in lines.items()}, models,
                                           float(np.mean(chance)), K), "scale_curve")
        sections[0].figures.append(Figure(fig, "Accuracy (mean over the sets) against parameters, one point per "
                                               "model of the sweep."))
    return sections
