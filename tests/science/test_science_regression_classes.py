"""Science checks of ``regression-icl`` beyond dense linear functions (Garg, Tsipras, Liang and
Valiant 2022, sections 4-5; spec mechanisms.md, regression-icl), each on its own preset:

- ``sparse``: the transformer uses the sparsity of ``w`` (it tracks Lasso rather than least
  squares): at n = d/2 examples its error is below least squares' and within 2x of Lasso's;
- ``tree``: the transformer beats greedy tree learning: at the last point (n = 10) its error is
  below that of both greedy trees (depth 4 and unrestricted).

The rules are the report's (``report.finding``), written before any run of these presets; the
errors are the study's own, on its evaluation prompts.

Measured 2026-12-06 on the 2-core machine with one other job, one thread.

``sparse`` (d = 4, one non-zero coordinate, 10K steps; 292-296 s of wall time a run), error / s at
n = d/2 = 2, transformer / least squares / Lasso: seed 0 0.376 / 0.529 / 0.466, seed 1
0.364 / 0.459 / 0.393, seed 2 0.337 / 0.481 / 0.391.

``tree`` (d = 3, depth 2, 4000 steps; 254-264 s a run), squared error at n = 10, transformer /
better greedy tree / boosted trees: seed 0 0.292 / 0.692 / 0.641, seed 1 0.236 / 0.590 / 0.521,
seed 2 0.161 / 0.552 / 0.497.

The seed is the ``science_seed`` fixture (``ICLAB_SCIENCE_SEED``, default 0, what CI runs); ``make
seeds`` runs seeds 0, 1 and 2.
"""

import pytest
from helpers import one_thread

import iclab
from iclab.config import load_config
from iclab.studies.regression_icl.config import RegressionICLConfig
from iclab.studies.regression_icl.report import FLOOR, check_points

pytestmark = pytest.mark.slow


def errors_at(preset: str, seed: int, out, pos_of) -> dict[str, float]:
    """Final mean error per predictor at ``pos_of(world)`` examples, from a run of ``preset``."""
    with one_thread():
        run = iclab.run("regression-icl", preset=preset, overrides={"seed": seed}, out=out)
    world = load_config(RegressionICLConfig, "regression-icl", preset).world
    rows = run.load_rows().where(probe="icl_error", label=None, metric="error", pos=pos_of(world))
    return {r.model: r.value for r in rows}


def test_sparse_transformer_is_below_least_squares_and_near_lasso_at_half_d(tmp_path, science_seed):
    at = errors_at("sparse", science_seed, tmp_path, lambda w: check_points(w)["d/2"])
    assert at["transformer"] < at["least-squares"], at
    assert at["transformer"] <= 2 * max(at["lasso"], FLOOR), at


def test_transformer_beats_greedy_trees_at_the_last_point(tmp_path, science_seed):
    at = errors_at("tree", science_seed, tmp_path, lambda w: w.points - 1)
    assert at["transformer"] < min(at["tree-4"], at["tree"]), at
