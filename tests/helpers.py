"""Shared helpers: the command line in a subprocess, and the checks every probe and world pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import annotated_types
import numpy as np

REPO = Path(__file__).resolve().parents[1]
ICLAB = [sys.executable, "-m", "iclab.cli"]

# A few seconds of training: enough to exercise every step of the study.
TINY = ["--set", "layers=[2]", "--set", "model.d_model=32", "--set", "train.steps=60",
        "--set", "train.eval_every=20", "--set", "train.ckpt_every=20", "--set", "probe.n_prompts=16",
        "--set", "train.warmup=5"]


def check_probe_contract(probe, model, prompts) -> None:
    """The checks every probe passes: the same model and prompts give the same rows and
    arrays, rows fit the schema, and no hook is left on the model."""
    from iclab.models.hooks import hook_count
    from iclab.rows import ROW_COLUMNS, Row

    before = hook_count(model)
    a, b = probe(model, prompts), probe(model, prompts)
    assert hook_count(model) == before, f"{type(probe).__name__} left hooks on the model"
    assert a.rows and a.rows == b.rows, f"{type(probe).__name__}: rows differ between two calls"
    for r in a.rows:
        assert isinstance(r, Row) and r.probe == probe.name and isinstance(r.value, float), r
        assert set(vars(r)) == set(ROW_COLUMNS)
    assert set(a.arrays) == set(b.arrays)
    for key, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[key])


def out_of_range_values(cls, valid: dict) -> list[tuple[str, object]]:
    """(field, value) pairs that break a numeric bound declared on ``cls``'s pydantic fields
    (``Field(ge=..., gt=..., le=..., lt=...)``), one per bound: the constraints are data, so the
    bad values are made from them (scikit-learn's ``check_param_validation``). ``valid`` holds
    valid values for the other fields."""
    out = []
    for name, info in cls.model_fields.items():
        for m in info.metadata:
            if isinstance(m, annotated_types.Ge):
                out.append((name, m.ge - 1))
            elif isinstance(m, annotated_types.Gt):
                out.append((name, m.gt - (1 if isinstance(m.gt, int) else 1e-3)))
            elif isinstance(m, annotated_types.Le):
                out.append((name, m.le + 1))
            elif isinstance(m, annotated_types.Lt):
                out.append((name, m.lt + (1 if isinstance(m.lt, int) else 1e-3)))
    return out


def check_parameter_validation(cls, valid: dict) -> int:
    """Every parameter of ``cls`` refuses an unknown key and each out-of-range value with the one
    config message (``iclab.config.validate``): the key, the value, what is allowed, one line.
    Returns how many bad values were tried."""
    import pytest

    from iclab.config import validate
    from iclab.errors import ConfigError

    cls.model_validate(valid)  # the valid parameters pass
    with pytest.raises(ConfigError, match="unknown key 'not_a_parameter'"):
        validate(cls, {**valid, "not_a_parameter": 1})
    bad = out_of_range_values(cls, valid)
    for key, value in bad:
        with pytest.raises(ConfigError) as e:
            validate(cls, {**valid, key: value}, f"{cls.__name__}")
        msg = str(e.value)
        assert f"{key} = {value!r}" in msg and "\n" not in msg, msg
    return len(bad)


def iclab(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*ICLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check_report_rebuilds(run_dir: Path) -> None:
    """``iclab report`` rebuilds the same report (text, tables, numbers) and byte-identical figures
    from the stored run alone: models and checkpoints deleted, every forward pass refused."""
    import shutil
    from unittest import mock

    import torch

    import iclab

    run_dir = Path(run_dir)
    report = (run_dir / "report.json").read_text()
    figures = {p.name: p.read_bytes() for p in (run_dir / "figures").glob("*.png")}
    assert figures, f"{run_dir} has no figures"
    for d in ("models", "checkpoints", "figures"):
        shutil.rmtree(run_dir / d, ignore_errors=True)
    for f in ("report.json", "report.html"):
        (run_dir / f).unlink()

    def no_forward(*args, **kwargs):
        raise AssertionError("a report ran a model")

    with mock.patch.object(torch.nn.Module, "__call__", no_forward):
        iclab.report(run_dir)
    assert (run_dir / "report.json").read_text() == report  # as text: NaN cells compare equal
    again = {p.name: p.read_bytes() for p in (run_dir / "figures").glob("*.png")}
    assert again.keys() == figures.keys()
    assert [k for k in figures if again[k] != figures[k]] == [], "figures differ after the rebuild"
    assert (run_dir / "report.html").is_file()
