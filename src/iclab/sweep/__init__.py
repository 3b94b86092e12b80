"""Sweeps: a grid over config keys, each point a normal run, one report over all.

>>> from iclab.sweep import run_sweep
>>> res = run_sweep("icg-generalization", "cpu", grid={"world.r_repeat": [0.25, 0.75]})
>>> res.path / "report.html", [t.status for t in res.trials]

Executors: local (in this process, or a process pool with ``workers``) and Ray
(optional extra). See :mod:`iclab.sweep.runner` for the directory layout and the rules
(failed trials recorded, finished ones skipped on a re-run).
"""

__all__ = ["run_sweep", "expand_grid", "SweepResult"]


def __getattr__(name: str):  # lazy: `import iclab.sweep.grid` stays free of torch
    if name in ("run_sweep", "SweepResult"):
        from iclab.sweep import runner

        return getattr(runner, name)
    if name == "expand_grid":
        from iclab.sweep.grid import expand_grid

        return expand_grid
    raise AttributeError(f"module 'iclab.sweep' has no attribute {name!r}")
