"""The icg-generalization sweep report: ICTR heat maps over M × r_R, ICTR vs k, phases over r_R."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from iclab.runs.report import Figure, Section, Table
from iclab.runs.run import Run
from iclab.studies.icg_generalization import figures as figs
from iclab.studies.icg_generalization.report import at_stage, curves_by_k, first_and_last
from iclab.worlds.icg import TOPIC_SETS


def _trial_summary(path: Path, values: dict[str, Any]) -> dict[str, Any] | None:
    """Config values and step-0/final ICTR rows of one finished trial (None if it has none)."""
    run = Run(path)
    cfg = yaml.safe_load(run.config_yaml) or {}
    final = first_and_last(run.load_rows())
    if not final:
        return None
    world, model, probe = cfg.get("world", {}), cfg.get("model", {}), cfg.get("probe", {})
    return {"M": world.get("arity"), "r_R": world.get("r_repeat"), "gamma": world.get("gamma"),
            "group": _group_label(model, values), "k": probe.get("report_shot", 5), "rows": final}


_CELL_KEYS = {"world.arity", "world.n_subtopics", "world.r_repeat", "model.size", "model.n_heads", "model.window"}


def _group_label(model: dict, values: dict[str, Any]) -> str:
    """The heat map a trial belongs to: its model (size, H, W) and any grid axis other than M, K, r_R."""
    label = str(model.get("size", "?"))
    if model.get("n_heads"):
        label += f" H{model['n_heads']}"
    if model.get("window"):
        label += f" W{model['window']}"
    others = [f"{k.split('.')[-1]}={v}" for k, v in values.items() if k not in _CELL_KEYS]
    return " ".join([label, *others])


def sweep_report(trials: list, save_figure: Callable[[Any, str], str]) -> list[Section]:
    """The sweep's figures: ICTR heat maps over M × r_R (R/C/U cells, one row per model),
    ICTR vs k of every trial, and the phase plot over r_R."""
    summaries = {}
    for t in trials:
        s = _trial_summary(Path(t.path), t.values)
        if s is not None:
            summaries[t.name] = s
    if not summaries:
        return []
    k = next(iter(summaries.values()))["k"]

    def val(s, metric, topic_set, tag="trained"):
        return at_stage(s["rows"], tag).where(metric=metric, label=topic_set, pos=k).first()
    table = Table(["trial", "model", "M", "r_R", "γ", "ICTR R", "ICTR C", "ICTR U", "untrained R", "Bayes R",
                   "Bayes C", "Bayes U"],
                  [[name, s["group"], s["M"], s["r_R"], s["gamma"], val(s, "ictr", "R"), val(s, "ictr", "C"),
                    val(s, "ictr", "U"), val(s, "ictr", "R", "untrained"), val(s, "bayes_ictr", "R"),
                    val(s, "bayes_ictr", "C"), val(s, "bayes_ictr", "U")] for name, s in summaries.items()],
                  caption=f"ICTR at k = {k} shots at the end of training.")
    cells = [(s["group"], s["M"], s["r_R"], {x: val(s, "ictr", x) for x in TOPIC_SETS}) for s in summaries.values()]
    heat = save_figure(figs.sweep_heatmaps(cells), "sweep_heatmap")
    curves = {name: curves_by_k(at_stage(s["rows"], "trained"))["trained"]
              for name, s in summaries.items()}
    by_k = save_figure(figs.sweep_ictr_vs_k(curves), "sweep_ictr_vs_k")
    sections = [Section("ICTR over the grid", tables=[table]),
                Section("Heat map over M × r_R", "Each cell holds ICTR at the end of training for R, C and U "
                        "topics (left to right); one row of panels per model.",
                        figures=[Figure(heat, f"ICTR (k = {k}) by composition arity M and share of repeated "
                                        "topics r_R.")]),
                Section("ICTR against the number of shots", figures=[Figure(by_k, "ICTR_X(k) of every trial.")])]
    if len({c[2] for c in cells}) > 1:
        phase = save_figure(figs.phase_plot(cells), "sweep_phase")
        sections.append(Section("Phases over r_R", "Underfit (nothing repeated) → overfit (only R repeated) → "
                                "generalize (U repeated too), as r_R grows.",
                                figures=[Figure(phase, f"ICTR (k = {k}) against r_R, one panel per M.")]))
    return sections
