"""Science check: the cpu preset of ``regression-icl`` learns linear regression in context
(Garg, Tsipras, Liang and Valiant 2022; spec mechanisms.md, regression-icl).

Margins fixed before the preset's runs were looked at (given with the task): on the cpu
preset's linear class, at n = 2d in-context examples, the trained transformer's error is

- within 2x the error of least squares, and
- below the error of the averaging estimator (one gradient step from 0),

both on the study's own evaluation prompts (the mean over ``eval.n_prompts`` prompts of the
squared error divided by d). The cpu preset's class is noisy linear regression (σ = 0.5): without
label noise least squares is exact from n = d on (its error at n = 2d is float32 rounding, about
1e-13), so "within 2x" could not be met by any learner other than least squares itself.

The seed is the ``science_seed`` fixture (``ICLAB_SCIENCE_SEED``, default 0, what CI runs); ``make
seeds`` runs seeds 0, 1 and 2.

Measured 2026-12-06 on a 2-core machine shared with three other jobs (the cpu preset, a 4-layer
Llama-style model, 4000 steps; 211-241 s of CPU time per run), error / d at n = 2d = 10,
transformer / least squares / averaging: seed 0 0.141 / 0.111 / 0.700 (ratio 1.27), seed 1
0.155 / 0.115 / 0.767 (1.35), seed 2 0.178 / 0.112 / 0.687 (1.59). Margins unchanged.

Re-measured at seed 0 after the merge of main (training curves, throughput rows): the same
numbers to the last digit (0.141 / 0.111 / 0.700); this test took 253 s of CPU on one thread,
pytest and imports included, and 9.4 minutes of wall time on the 2-core machine under a load
of 8 (it got 44% of a core). Seeds 1 and 2 were not re-run after the merge.
"""

import pytest
from helpers import one_thread

import iclab
from iclab.config import load_config
from iclab.rows import Rows
from iclab.studies.regression_icl.config import RegressionICLConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def at_2d(tmp_path_factory, science_seed) -> dict[str, float]:
    # One thread, as the preset was measured: the model is too small for two threads to help (on a busy
    # machine they slow it several times).
    with one_thread():
        run = iclab.run("regression-icl", preset="cpu", overrides={"seed": science_seed}, out=tmp_path_factory.mktemp("runs"))
    cfg = load_config(RegressionICLConfig, "regression-icl", "cpu")
    assert cfg.world.kind in ("linear", "noisy-linear")
    n = 2 * cfg.world.dim
    rows: Rows = run.load_rows().where(probe="icl_error", label=None, metric="error", pos=n)
    return {r.model: r.value for r in rows}


def test_transformer_is_within_twice_least_squares_at_2d(at_2d):
    assert at_2d["transformer"] <= 2 * at_2d["least-squares"], at_2d


def test_transformer_is_below_averaging_at_2d(at_2d):
    assert at_2d["transformer"] < at_2d["averaging"], at_2d
