"""Helpers of the fault tests: the command line in this process, and run directories made
without training."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    seconds: float


def cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """``iclab ARGS`` in this process (imports already paid), timed."""
    from iclab.cli import app

    t0 = time.perf_counter()
    res = CliRunner(env={"ICLAB_NO_PROGRESS": "1", **(env or {})}).invoke(app, list(args))
    seconds = time.perf_counter() - t0
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback: let pytest show where
    return CliResult(res.exit_code, res.stdout, res.stderr, seconds)


def one_line_error(res: CliResult, *needles: str) -> str:
    """The checks every refused input passes: exit status 2, one line ``error: ...`` on stderr
    naming each of ``needles``, no traceback."""
    err = res.stderr.strip()
    assert res.code == 2, (res.code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes (to check that a refused command changed nothing)."""
    path = Path(path)
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def fake_run(root: Path, study: str = "induction-heads", overrides: dict | None = None, status: str = "done",
             rows: int = 3, run_id: str = "run-a") -> Path:
    """A run directory as a study leaves it (config.yaml, run.json, results.parquet), made
    without training: for tests of reading runs, not of measuring."""
    from iclab.config import to_yaml
    from iclab.rows import Row
    from iclab.runs.run import Run
    from iclab.studies import get_study

    cfg = get_study(study).load_config("cpu", overrides)
    run = Run.create_at(Path(root) / study / run_id, study, to_yaml(cfg), {"preset": "cpu", "status": status})
    if rows:
        run.save_rows([Row("fake", "value", float(i), step=i) for i in range(rows)])
    return run.path
