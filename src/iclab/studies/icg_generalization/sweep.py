"""The icg-generalization sweep report: what the sweep found for findings 2–5, ICTR heat maps over
M × r_R, ICTR against W, H or γ, ICTR vs k, phases over r_R."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from iclab.runs.report import Figure, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import trial_summaries
from iclab.studies.icg_generalization import figures as figs
from iclab.studies.icg_generalization.findings import AXES, Point, findings_text, varied
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
    k = probe.get("report_shot", 5)
    trained = at_stage(final, "trained")
    point = Point(values=dict(values), size=model.get("size", "mini"), paragraph_len=world.get("paragraph_len", 24),
                  ictr={r.label: r.value for r in trained.where(metric="ictr", pos=k)},
                  bayes={r.label: r.value for r in trained.where(metric="bayes_ictr", pos=k)},
                  by_k={s: [(int(a[0]), float(a[1])) for a in c] for s, c in curves_by_k(trained)["trained"].items()})
    return {"M": world.get("arity"), "r_R": world.get("r_repeat"), "gamma": world.get("gamma"),
            "group": _group_label(model, values), "k": k, "rows": final, "point": point}


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
    """The sweep's sections: the table of ICTR with what the sweep found for findings 2–5
    (:mod:`~iclab.studies.icg_generalization.findings`), ICTR heat maps over M × r_R (R/C/U cells,
    one row per model; when M or r_R varies), ICTR against W, H or γ (when one of them varies),
    ICTR vs k of every trial, and the phase plot over r_R."""
    summaries = trial_summaries(trials, lambda t: _trial_summary(Path(t.path), t.values))
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
    points = [s["point"] for s in summaries.values()]
    found = findings_text(points)
    sections = [Section("ICTR over the grid", "\n\n".join(found), tables=[table])]
    cells = [(s["group"], s["M"], s["r_R"], {x: val(s, "ictr", x) for x in TOPIC_SETS}) for s in summaries.values()]
    if len({(c[1], c[2]) for c in cells}) > 1:
        heat = save_figure(figs.sweep_heatmaps(cells), "sweep_heatmap")
        sections.append(Section("Heat map over M × r_R", "Each cell holds ICTR at the end of training for R, C and "
                                "U topics (left to right); one row of panels per model.",
                                figures=[Figure(heat, f"ICTR (k = {k}) by composition arity M and share of "
                                                "repeated topics r_R.")]))
    axes = varied(points)
    axis = next((a for a in ("model.window", "world.gamma", "model.n_heads") if a in axes), None)
    if axis is not None:
        sections.append(_axis_section(points, axes, axis, k, save_figure))
    curves = {name: curves_by_k(at_stage(s["rows"], "trained"))["trained"]
              for name, s in summaries.items()}
    by_k = save_figure(figs.sweep_ictr_vs_k(curves), "sweep_ictr_vs_k")
    sections.append(Section("ICTR against the number of shots", figures=[Figure(by_k, "ICTR_X(k) of every trial.")]))
    if len({c[2] for c in cells}) > 1:
        phase = save_figure(figs.phase_plot(cells), "sweep_phase")
        sections.append(Section("Phases over r_R", "Underfit (nothing repeated) → overfit (only R repeated) → "
                                "generalize (U repeated too), as r_R grows.",
                                figures=[Figure(phase, f"ICTR (k = {k}) against r_R, one panel per M.")]))
    return sections


_AXIS_NAMES = {"model.window": "attention window W", "world.gamma": "topic uncertainty γ",
               "model.n_heads": "heads H"}


def _axis_section(points: list[Point], axes: list[str], axis: str, k: int,
                  save_figure: Callable[[Any, str], str]) -> Section:
    """ICTR of R, C, U against ``axis``, one panel per value of the other varied axes."""
    others = [a for a in axes if a != axis]
    panels: dict[str, list] = {}
    for p in points:
        label = ", ".join(f"{AXES.get(a, a.split('.')[-1])} = {p.values.get(a)}" for a in others) or "all trials"
        panels.setdefault(label, []).append((p.values[axis], p.ictr, p.bayes))
    mark = points[0].paragraph_len + 1 if axis == "model.window" else None
    name = axis.split(".")[-1]
    path = save_figure(figs.ictr_against(panels, _AXIS_NAMES[axis], mark), f"sweep_ictr_by_{name}")
    text = (f"The dotted line is a paragraph plus its separator ({mark} tokens): windows left of it are shorter."
            if mark else "")
    return Section(f"ICTR against {_AXIS_NAMES[axis]}", text,
                   figures=[Figure(path, f"ICTR (k = {k}) of R, C and U topics against the {_AXIS_NAMES[axis]}; "
                                         "one panel per value of the sweep's other axes.")])
