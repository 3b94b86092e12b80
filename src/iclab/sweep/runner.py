"""Run a sweep: every trial of a grid as a normal run, then one report over all of them.

::

    out/<study>/<sweep-id>/
        sweep.json           study, preset, overrides, grid, and one record per trial
        <trial-name>/        a run directory (see iclab.sweep.trials)
        figures/*.png
        report.json, report.html

The grid is the preset's ``sweep:`` section (after ``overrides``) updated by ``grid``.
Every trial's config is validated (and its memory estimate checked) before the first
trial runs, so a typo in a key or a size that cannot fit fails at once. The sweep id is the preset's name and a hash of all trial configs: the
same sweep run again lands in the same directory, skips its finished trials, resumes
interrupted ones from their checkpoints and retries failed ones. A trial that fails is
recorded (status ``failed`` and the error, in its run.json and in sweep.json) and the
sweep goes on; with ``retries`` it is first tried again that many times.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from iclab.atomic import atomic_write_text
from iclab.config import to_yaml
from iclab.errors import ConfigError
from iclab.progress import console
from iclab.studies import get_study
from iclab.sweep.grid import expand_grid
from iclab.sweep.trials import TrialRecord, prepare_trial


@dataclass
class SweepResult:
    """A finished sweep: its directory and the record of every trial."""

    path: Path
    trials: list[TrialRecord]

    @property
    def failed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == "failed"]

    @property
    def report(self) -> Path:
        return self.path / "report.html"


def _sweep_id(preset: str, study: str, configs: list[str], names: list[str]) -> str:
    digest = hashlib.sha1(json.dumps([study, names, configs]).encode()).hexdigest()[:8]
    return f"{Path(preset).stem}-{digest}"


def run_sweep(study: str, preset: str = "cpu", overrides: dict[str, Any] | None = None,
              grid: dict[str, list] | None = None, out: str | Path = "runs", *,
              executor: Literal["local", "ray"] = "local", workers: int = 1, name: str | None = None,
              model: str | None = None, address: str | None = None, retries: int = 0,
              cpus_per_trial: float = 1.0, gpus_per_trial: float | None = None) -> SweepResult:
    """Run every trial of the sweep grid of ``study`` and write the sweep's report.

    Parameters
    ----------
    study : str
        A registered study.
    preset : str, default "cpu"
        Preset name or YAML file; its ``sweep:`` section is the default grid.
    overrides : dict, optional
        Dotted keys set on every trial (``{"train.steps": 500}``).
    grid : dict of str to list, optional
        Axes added to (or replacing) the preset's grid, see :mod:`iclab.sweep.grid`.
    out : path, default "runs"
        Runs root; the sweep goes to ``out/<study>/<sweep-id>``.
    executor : {"local", "ray"}, default "local"
    workers : int, default 1
        Local executor: trials run at once (1: in this process).
    name : str, optional
        Sweep id instead of ``<preset>-<hash of the trial configs>``.
    model : str, optional
        A pretrained model (name or path) measured in every trial instead of training.
    address : str, optional
        Ray executor: ``"auto"`` (the cluster running on this machine), ``"HOST:PORT"`` (a
        head's GCS address) or ``"ray://HOST:PORT"`` (Ray client); None starts a local Ray.
    retries : int, default 0
        A failed trial (the study raised, or its worker died) is tried again up to this many
        more times, from its last checkpoint; every attempt's error is kept in ``sweep.json``.
    cpus_per_trial : float, default 1
        CPUs Ray reserves for each trial.
    gpus_per_trial : float, optional
        GPUs Ray reserves for each trial; None: from the trials' ``train.device`` (1 for
        "cuda", and for "auto" on a cluster with GPUs; else 0).

    Returns
    -------
    SweepResult
        Failed trials are in ``result.failed``; they do not raise.
    """
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor = {executor!r}; allowed: local, ray")
    if workers < 1:
        raise ConfigError(f"workers = {workers}; must be >= 1")
    if not 0 <= retries <= 100:
        raise ConfigError(f"retries = {retries}; allowed: 0 to 100")
    if not 0 < cpus_per_trial <= 1024 or not 0 <= (gpus_per_trial or 0) <= 64:
        raise ConfigError(f"cpus per trial = {cpus_per_trial}, gpus per trial = {gpus_per_trial}; allowed: "
                          "0 < cpus <= 1024, 0 <= gpus <= 64")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"sweep name {name!r}: use letters, digits and ._- (it names a directory)")
    if executor == "ray":
        from iclab.sweep.ray_executor import check_ray

        check_ray()  # before anything is written
    spec = get_study(study)
    overrides = dict(overrides or {})
    base = spec.load_config(preset, overrides)
    full_grid = {**(getattr(base, "sweep", None) or {}), **(grid or {})}
    trials = expand_grid(full_grid)
    if not trials:
        raise ConfigError(f"no sweep grid for {study} preset {preset!r}: give --grid KEY=[V1,V2] or a `sweep:` "
                          "section in the preset")
    configs, devices = [], set()
    for t in trials:
        try:
            cfg = spec.load_config(preset, {**overrides, **t.overrides})
            spec.preflight(cfg, model)  # a trial that cannot fit is refused before the sweep starts
        except ConfigError as e:  # a missing --model is the same for every trial: it goes up unchanged
            raise ConfigError(f"sweep trial {t.name!r}: {e}") from None
        configs.append(to_yaml(cfg))
        devices.add(getattr(getattr(cfg, "train", None), "device", "cpu"))

    with contextlib.ExitStack() as stack:
        if executor == "ray":
            from iclab.sweep.ray_executor import ray_session

            # connect now: a cluster that cannot be reached is refused before anything is written
            stack.enter_context(ray_session(address))
        sweep_id = name or _sweep_id(preset, study, configs, [t.name for t in trials])
        sweep_dir = Path(out) / study / sweep_id
        records = []
        earlier = _earlier_seconds(sweep_dir)
        for t, cfg_yaml in zip(trials, configs):
            path = sweep_dir / t.name
            meta = {"preset": preset, "model": model, "overrides": {**overrides, **t.overrides}}
            status = prepare_trial(path, study, sweep_id, t.name, cfg_yaml, meta)
            records.append(TrialRecord(t.name, t.overrides, str(path), status,
                                       _error_of(path) if status == "failed" else None,
                                       earlier.get(t.name) if status == "done" else None))
        state = {"study": study, "sweep": sweep_id, "preset": preset, "overrides": overrides, "grid": full_grid,
                 "model": model, "executor": executor, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _save(sweep_dir, state, records)

        todo = [r for r in records if r.status != "done"]
        skipped = len(records) - len(todo)
        console.print(f"sweep {sweep_dir}: {len(records)} trials" + (f", {skipped} already done" if skipped else ""),
                      highlight=False, soft_wrap=True)
        by_path = {r.path: r for r in records}
        finished = 0

        def on_done(outcome: dict[str, Any]) -> None:
            """After every attempt: record it; a failed attempt that will be retried keeps its error."""
            nonlocal finished
            r = by_path[outcome["path"]]
            r.attempts, r.error, r.seconds = outcome["attempt"], outcome["error"], outcome["seconds"]
            if outcome["error"]:
                r.errors.append(outcome["error"])
            r.status = outcome["status"] if outcome["final"] else "retrying"
            finished += outcome["final"]
            _save(sweep_dir, state, records)
            line = (f"[{finished}/{len(todo)}] {r.name}: {r.status} in {r.seconds:.0f} s" if outcome["final"] else
                    f"{r.name}: attempt {r.attempts} failed in {r.seconds:.0f} s, trying again")
            if r.attempts > 1 and outcome["final"]:
                line += f" (attempt {r.attempts})"
            console.print(line + (f" ({r.error})" if r.error else ""), highlight=False, soft_wrap=True)

        for r in todo:
            r.status, r.attempts, r.errors = "pending", 0, []
        paths = [r.path for r in todo]
        if executor == "ray":
            from iclab.studies import STUDIES
            from iclab.sweep.ray_executor import run_ray

            run_ray(paths, on_done, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                    retries=retries, study_entry=STUDIES[study], devices=devices)
        else:
            from iclab.sweep.local import run_local

            run_local(paths, on_done, workers=workers, retries=retries)

        from iclab.sweep.report import write_sweep_report

        write_sweep_report(sweep_dir, state, records, spec.sweep_report)
        return SweepResult(sweep_dir, records)


def _error_of(path: Path) -> str | None:
    try:
        return json.loads((path / "run.json").read_text()).get("error")
    except (OSError, ValueError):
        return None


def _earlier_seconds(sweep_dir: Path) -> dict[str, float]:
    """Wall time of each trial as an earlier run of this sweep recorded it."""
    try:
        trials = json.loads((sweep_dir / "sweep.json").read_text())["trials"]
    except (OSError, ValueError, KeyError):
        return {}
    return {t["name"]: t["seconds"] for t in trials if t.get("seconds") is not None}


def _save(sweep_dir: Path, state: dict[str, Any], records: list[TrialRecord]) -> None:
    data = {**state, "trials": [r.to_dict() for r in records]}
    atomic_write_text(sweep_dir / "sweep.json", json.dumps(data, indent=2, default=str))
