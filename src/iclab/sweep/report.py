"""The sweep's report: one table of all trials, then the study's own figures over the grid.

A study may give ``sweep_report(trials, save_figure) -> list[Section]`` (a field of its
:class:`~iclab.studies.study.Study`); it gets the finished trials (:class:`iclab.sweep.trials.TrialRecord`, each with the
path of its run directory) and a function that saves a matplotlib figure under the
sweep's ``figures/`` and returns its relative path. The report is written as
``report.json`` and a self-contained ``report.html`` in the sweep directory, in the same
style as a run's report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from iclab.atomic import atomic_write_text
from iclab.runs.report import Report, Section, Table, render_page
from iclab.runs.run import Run
from iclab.sweep.trials import TrialRecord

SectionsFn = Callable[[list[TrialRecord], Callable[[Any, str], str]], list[Section]]


def trials_table(records: list[TrialRecord]) -> Table:
    keys = list(dict.fromkeys(k for r in records for k in r.values))
    rows = [[r.name, *(r.values.get(k) for k in keys), r.status,
             "" if r.seconds is None else round(r.seconds), r.attempts or "", _errors(r)] for r in records]
    return Table(["trial", *keys, "status", "seconds", "attempts", "error"], rows,
                 caption="Each trial is a run directory named after its trial inside the sweep directory. "
                         "Attempts: executions in the last run of the sweep (blank: finished earlier, skipped).")


def _errors(r: TrialRecord) -> str:
    """The trial's error; for a trial tried more than once, each failed attempt's error."""
    if len(r.errors) <= 1:
        return r.error or ""
    return "; ".join(f"attempt {i}: {e}" for i, e in enumerate(r.errors, 1))


def write_sweep_report(sweep_dir: Path, state: dict[str, Any], records: list[TrialRecord],
                       sections_fn: SectionsFn | None) -> Path:
    """Write report.json and report.html of the sweep; returns the HTML path.

    The generic report (the trials table) is written first, so a study section that
    raises still leaves it behind; the exception is then raised.
    """
    n_done = sum(r.status == "done" for r in records)
    failed = [r for r in records if r.status == "failed"]
    summary = (f"{len(records)} trials of study {state['study']} (preset {state['preset']}) over the grid "
               + ", ".join(f"{k} ∈ {v}" for k, v in state["grid"].items())
               + f": {n_done} done, {len(failed)} failed.")
    if state.get("overrides"):
        summary += " Set on every trial: " + ", ".join(f"{k}={v}" for k, v in state["overrides"].items()) + "."
    report = Report(f"Sweep {state['sweep']}", summary, [Section("Trials", tables=[trials_table(records)])])
    path = _save(sweep_dir, state, report)
    done = [r for r in records if r.status == "done"]
    if sections_fn is not None and done:
        runner = Run(sweep_dir)  # only its save_figure: figures/<name>.png under the sweep directory
        report.sections = report.sections[:1] + list(sections_fn(done, runner.save_figure))
        path = _save(sweep_dir, state, report)
    return path


def _save(sweep_dir: Path, state: dict[str, Any], report: Report) -> Path:
    atomic_write_text(sweep_dir / "report.json", json.dumps(asdict(report), indent=2, default=str))
    return render_sweep(sweep_dir, state, report)


def render_sweep(sweep_dir: Path, state: dict[str, Any], report: Report) -> Path:
    """Write ``report.html`` of the sweep (figures inlined)."""
    line = {k: state[k] for k in ("study", "sweep", "preset", "created", "executor")}
    grid = json.dumps(state["grid"], indent=2, default=str)
    return atomic_write_text(sweep_dir / "report.html", render_page(sweep_dir, report, line, ("Sweep grid", grid)))
