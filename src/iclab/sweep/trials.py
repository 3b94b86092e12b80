"""A trial on disk: a normal run directory inside the sweep directory, and how it is run.

``out/<study>/<sweep-id>/<trial-name>/`` is a run directory like any other (config.yaml,
run.json, checkpoints, results.parquet, report.html), so ``iclab resume``, ``iclab
report`` and ``iclab results`` work on it unchanged. Its ``run.json`` has ``run`` =
``<sweep-id>/<trial-name>`` (the ``run`` column of the results table) plus ``sweep``
and ``trial``.

A trial is prepared (config and metadata written, status ``pending``) before the sweep
starts, then executed with :func:`iclab.studies.execute.resume`, which runs the study on an existing
directory from its last checkpoint (from scratch when there is none) and records
``done`` or ``failed`` with the error. So a trial interrupted by a killed sweep continues
where it stopped, and a finished one is skipped.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iclab.errors import ConfigError
from iclab.runs.run import Run


@dataclass
class TrialRecord:
    """What the sweep knows about one trial.

    ``status`` is pending, running, done or failed; ``error`` is one line for a failed
    trial; ``seconds`` is the wall time of its last execution; ``attempts`` counts its
    executions in this run of the sweep (more than one when ``retries`` allowed it to be tried
    again), and ``errors`` holds the error of each failed attempt, in order.
    """

    name: str
    values: dict[str, Any]
    path: str
    status: str = "pending"
    error: str | None = None
    seconds: float | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_trial(path: Path, study: str, sweep_id: str, trial: str, config_yaml: str,
                  meta: dict[str, Any]) -> str:
    """Create the trial's run directory, or check an existing one; returns its status.

    Raises ConfigError when the directory holds a different config (the sweep directory
    was reused for another sweep).
    """
    run = Run(path)
    if (path / "config.yaml").is_file():
        if run.config_yaml != config_yaml:
            raise ConfigError(f"trial directory {path} holds a different config than this sweep's trial "
                              f"{trial!r}; give the sweep another name (--name) or remove the directory")
        if (path / "run.json").is_file():
            return run.meta.get("status", "pending")
    Run.create_at(path, study, config_yaml, {"run": f"{sweep_id}/{trial}", "status": "pending",
                                             "sweep": sweep_id, "trial": trial, **meta})
    return "pending"


def run_trial(path: str) -> dict[str, Any]:
    """Execute the trial at ``path`` (a picklable top-level function for process pools and Ray).

    Returns ``{"path", "status", "error", "seconds"}``. An exception of the study is
    recorded (in the run's ``run.json`` with its traceback, and in the returned
    ``error``), not raised: the sweep goes on. KeyboardInterrupt and SystemExit stop it.
    """
    from iclab.studies.execute import resume

    t0 = time.perf_counter()
    try:
        resume(path)
        status, error = "done", None
    except Exception as e:  # recorded in run.json by execute() and returned to the sweep
        status = "failed"
        error = f"{type(e).__name__}: {e}".splitlines()[0]
        meta = Run(Path(path)).meta
        if meta.get("status") != "failed":  # failed before the study started (config, registry)
            Run(Path(path)).update_meta(status="failed", error=error, traceback=traceback.format_exc(limit=20))
    return {"path": path, "status": status, "error": error, "seconds": time.perf_counter() - t0}


def record_failure(path: str, error: str) -> None:
    """Mark the trial at ``path`` failed with ``error`` in its ``run.json``: for a trial whose
    process died before it could say so itself (a killed worker)."""
    Run(Path(path)).update_meta(status="failed", error=error, traceback=None)
