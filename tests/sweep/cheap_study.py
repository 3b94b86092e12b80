"""A cheap study for executor tests that run trials in other processes (Ray workers).

It squares ``x``. Its faults are switched off by a file ``cured`` in the trial's run
directory, so that a test can fix a trial between two runs of the same sweep (its config,
and so the sweep id, unchanged):

- ``x == fail_on`` raises;
- ``x == stall_on`` writes its process id to ``pids`` and waits (until cured, at most two
  minutes), for a test to kill the worker.

Every attempt appends ``x`` to ``calls`` in the run directory, so a test counts executions
across processes.
"""

from __future__ import annotations

import os
import time

from iclab.config import Frozen
from iclab.rows import Row
from iclab.runs.report import Report, Section
from iclab.studies.study import Study


class CheapConfig(Frozen):
    seed: int = 0
    x: int = 0
    fail_on: int | None = None
    stall_on: int | None = None
    sweep: dict[str, list] = {}


def measure(cfg: CheapConfig, run, model_name=None) -> None:
    with open(run.path / "calls", "a") as f:
        f.write(f"{cfg.x}\n")
    cured = (run.path / "cured").exists()
    if cfg.x == cfg.stall_on and not cured:
        with open(run.path / "pids", "a") as f:
            f.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 120
        while not (run.path / "cured").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("nobody killed this worker")
            time.sleep(0.05)
    if cfg.x == cfg.fail_on and not cured:
        raise RuntimeError(f"x = {cfg.x} is cursed")
    run.save_rows([Row("cheap", "square", cfg.x ** 2)])


def report(cfg: CheapConfig, run) -> Report:
    return Report("cheap", f"x = {cfg.x}", [Section("x", str(run.load_rows().value("square")))])


STUDY = Study("cheap-remote", config=CheapConfig, measure=measure, report=report)
