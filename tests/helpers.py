"""Shared helpers for tests that run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ICLAB = [sys.executable, "-m", "iclab.cli"]

# A few seconds of training: enough to exercise every step of the study.
TINY = ["--set", "layers=[2]", "--set", "model.d_model=32", "--set", "train.steps=60",
        "--set", "train.eval_every=20", "--set", "train.ckpt_every=20", "--set", "probe.n_prompts=16",
        "--set", "train.warmup=5"]


def check_probe_contract(probe, model, prompts) -> None:
    """The checks every probe passes: the same model and prompts give the same rows and
    arrays, rows fit the schema, and no hook is left on the model."""
    import numpy as np

    from iclab.models.hooks import hook_count
    from iclab.rows import ROW_COLUMNS, Row

    before = hook_count(model)
    a, b = probe(model, prompts), probe(model, prompts)
    assert hook_count(model) == before
    assert a.rows and a.rows == b.rows
    for r in a.rows:
        assert isinstance(r, Row) and r.probe == probe.name and isinstance(r.value, float)
        assert set(vars(r)) == set(ROW_COLUMNS)
    assert set(a.arrays) == set(b.arrays)
    for key, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[key])


def iclab(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*ICLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
