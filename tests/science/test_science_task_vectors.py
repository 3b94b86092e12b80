"""Science check: the presets of ``task-vectors`` show the coupled emergence of task encoding
and in-context regression (Han, Song, Gore and Agrawal, ICML 2025; spec task_vectors.md,
synthetic part).

Margins fixed before looking at the final run, for a world of B bases (chance TD 1/B):

- in-context error: at the last point of the prompt (point K, predicted from the K - 1
  examples before it) the trained transformer's squared error is below that of least
  squares on all D dimensions (OLS), on at least one basis;
- task decodability: at the end of training the mean TD at the best layer is ≥ 0.8,
  while at step 0 it is near chance (≤ 1/B + 0.15: 0.40 with 4 bases, 0.65 with 2). TD is read
  at the token just before the answer, as the spec defines it: the last x of the prompt;
- every basis is learned: at the last point the transformer's error on each basis is at most
  half that of predicting 0 (error / rank ≤ 0.5). Added in session 6, after runs in which TD at
  the last x passed 0.8 while one basis was still at predicting 0 (≈ 0.7–0.9): a basis the model
  has not learned is told apart from the others, so TD there counts only beside this check. The
  cpu-long preset's worst basis is at 0.072 (seed 0).

The ``cpu-long`` preset (the paper's world, 30K steps, 34–51 minutes) is checked on all three,
outside CI (marker ``long``). The ``cpu`` preset (2 rank-4 bases over D = 8, 10K steps, in CI) is
checked on the second and third only: it does not show the first. Measured with its recipe
before this check was written (seeds 0–2), the model's error at the last point is 1.0–2× that
of least squares (0.012–0.019 against 0.008–0.015 per rank), while it is below least squares
from n = 4 to n = D + 1 = 9; the notes (docs/task-vectors-notes.md) say why the shrunk world makes
least squares twice as hard to beat there. The comparison is printed, not asserted.
The seed is ``ICLAB_SCIENCE_SEED`` (default 0, what CI runs).
"""

import pytest

import iclab
from iclab.rows import Row

# Measured 2026-11-26 on this 2-core CPU (`iclab run task-vectors --preset cpu-long`, called cpu
# then; 34 minutes on an idle machine): the cpu-long preset (Llama-style, 6 layers, width 64, bases entering one at a
# time every 1500 steps with the rank ramp restarting for each, 30K steps) learns all four
# bases. Error at K = 20 per basis, transformer vs OLS: 0.011 / 0.020 / 0.067 / 0.072 vs
# 0.028 / 0.012 / 0.014 / 0.021 (below OLS on basis 0). Best mean TD at the last x: 0.242 at
# step 0, 0.975 at 30K (layer 5; per basis 0.96 / 0.95 / 1.0 / 0.99). At the last y, the
# token this check read until this preset (the spec's TD reads the token before the answer,
# which is the last x), the same run gives 0.245 and 0.698, short of 0.8. Margins unchanged.
# The recipe was found by trials at seed 0. Of two other seeds, seed 2 passes every test here
# (TD 0.86 at the last x, below OLS on bases 0 and 2, worst basis 0.044); seed 1 ends at TD 0.61
# (last x). So two of three seeds reach the phenomenon at this scale, not every one. 8 layers is no
# more robust (seed 1 reaches TD 0.98, but seed 2 leaves bases 2 and 3 unlearned), so 6 stays.
# Re-run 2026-12-06 at seed 0 with one thread beside another job (48.6 minutes, the whole study):
# TD 0.242 -> 0.983 (layer 4), error at K = 20 per basis 0.011 / 0.053 / 0.051 / 0.102 vs OLS
# 0.028 / 0.012 / 0.014 / 0.021: every test here passes (worst basis 0.102). The thread count changes
# the order of float sums, so the numbers differ from the two-thread run above.
# The cpu-long preset is not in CI (marker ``long``, run by ``make science-long``): it takes 34-51
# minutes, past CI's budget of 45 for everything. The cpu preset is.
pytestmark = pytest.mark.slow


def _run(preset: str, seed: int, out) -> list[Row]:
    return iclab.run("task-vectors", preset=preset, overrides={"seed": seed}, out=out).load_rows()


@pytest.fixture(scope="module")
def cpu_long(tmp_path_factory, science_seed) -> list[Row]:
    return _run("cpu-long", science_seed, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def cpu(tmp_path_factory, science_seed) -> list[Row]:
    return _run("cpu", science_seed, tmp_path_factory.mktemp("runs"))


def _config(preset: str):
    from iclab.config import load_config
    from iclab.studies.task_vectors.config import TaskVectorsConfig

    return load_config(TaskVectorsConfig, "task-vectors", preset)


def _bases(preset: str) -> set[str]:
    """Labels of the preset's bases, "0" .. "B-1"."""
    return {str(b) for b in range(_config(preset).world.n_bases)}


def _errors_at_last_point(rows: list[Row], model: str) -> dict[str, float]:
    last = max(r.pos for r in rows if r.probe == "regression")
    return {r.label: r.value for r in rows if r.probe == "regression" and r.model == model and r.pos == last}


def _best_td(rows: list[Row], preset: str, step: int) -> float:
    """Mean TD at the best layer, at the token the spec defines TD on (the last x, before the answer)."""
    from iclab.studies.task_vectors.config import read_position

    cfg = _config(preset)
    pos = read_position(cfg.world, cfg.probe.td_position)
    return max(r.value for r in rows if r.metric == "td" and r.step == step and r.pos == pos)


def _ols_comparison(rows: list[Row], preset: str) -> tuple[dict[str, float], dict[str, float]]:
    model = _errors_at_last_point(rows, "transformer")
    ols = _errors_at_last_point(rows, "least-squares")
    assert set(model) == set(ols) == _bases(preset)
    print(f"\n{preset}: error / rank at the last point, transformer vs OLS:",
          {b: (round(model[b], 4), round(ols[b], 4)) for b in sorted(model)})
    return model, ols


def _assert_td_rises_from_chance(rows: list[Row], preset: str) -> None:
    chance = 1 / len(_bases(preset))
    final = max(r.step for r in rows if r.metric == "td")
    start, end = _best_td(rows, preset, 0), _best_td(rows, preset, final)
    print(f"\n{preset}: best mean TD at the last x: step 0 {start:.3f}, step {final} {end:.3f}")
    assert start <= chance + 0.15
    assert end >= 0.8


def _assert_every_basis_is_learned(rows: list[Row], preset: str) -> None:
    model = _errors_at_last_point(rows, "transformer")
    assert set(model) == _bases(preset)
    assert max(model.values()) <= 0.5, f"a basis is not learned (error / rank at the last point): {model}"


@pytest.mark.long
def test_cpu_long_transformer_beats_ols_at_the_last_point_on_some_basis(cpu_long):
    model, ols = _ols_comparison(cpu_long, "cpu-long")
    assert any(model[b] < ols[b] for b in model)


@pytest.mark.long
def test_cpu_long_task_decodability_rises_from_chance(cpu_long):
    _assert_td_rises_from_chance(cpu_long, "cpu-long")


@pytest.mark.long
def test_cpu_long_every_basis_is_learned(cpu_long):
    _assert_every_basis_is_learned(cpu_long, "cpu-long")


def test_cpu_task_decodability_rises_from_chance(cpu):
    _ols_comparison(cpu, "cpu")  # printed for the record; see the module docstring
    _assert_td_rises_from_chance(cpu, "cpu")


def test_cpu_every_basis_is_learned(cpu):
    _assert_every_basis_is_learned(cpu, "cpu")
