"""Science check: the cpu preset of ``task-vectors`` shows the coupled emergence of task
encoding and in-context regression (Han, Song, Gore and Agrawal, ICML 2025; spec
task_vectors.md, synthetic part).

Margins fixed before looking at the final run:

- in-context error: at the last point of the prompt (K = 20, predicted from the 19
  examples before it) the trained transformer's squared error is below that of least
  squares on all 16 dimensions (OLS), on at least one basis;
- task decodability: at the end of training the mean TD at the best layer is ≥ 0.8,
  while at step 0 it is near chance (≤ 0.40, chance 0.25 with 4 bases).
"""

import pytest

import iclab
from iclab.probes.result import Row

# Measured 2026-11-26 on this 2-core CPU (fresh clone, `make science`; training alone runs at
# about 66 s per 1000 steps on an idle machine, so 35 minutes): the cpu preset (Llama-style,
# 6 layers, width 64, rank and points curriculum, 30K steps) learns bases 1 and 3 first (at
# about 5K and 10K steps) and 0 and 2 together later. Error at K = 20 per basis, transformer
# vs OLS: 0.026 / 0.027 / 0.023 / 0.012 vs 0.028 / 0.012 / 0.014 / 0.021 (below OLS on bases
# 0 and 3). Best mean TD: 0.245 at step 0, 0.675 at 30K (per basis at layer 5: 0.48 / 0.93 /
# 0.43 / 0.86; the kNN errors are 0 <-> 2 and 1 <-> 3 only, and 0 is not told from 2), so the
# TD margin still fails. The margins stand.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[Row]:
    from iclab import studies

    mp = pytest.MonkeyPatch()
    if "task-vectors" not in studies.STUDIES:  # the same whether or not the study is registered yet
        mp.setitem(studies.STUDIES, "task-vectors", studies.Study(
            "task-vectors", "Task vectors (Han et al. 2025)", "iclab.studies.task_vectors"))
    try:
        run = iclab.run("task-vectors", preset="cpu", out=tmp_path_factory.mktemp("runs"))
    finally:
        mp.undo()
    return run.load_rows()


def _errors_at_last_point(rows: list[Row], model: str) -> dict[str, float]:
    last = max(r.pos for r in rows if r.probe == "regression")
    return {r.label: r.value for r in rows if r.probe == "regression" and r.model == model and r.pos == last}


def _best_td(rows: list[Row], step: int) -> float:
    return max(r.value for r in rows if r.metric == "td" and r.step == step)


def test_transformer_beats_ols_at_k20_on_some_basis(rows):
    model = _errors_at_last_point(rows, "transformer")
    ols = _errors_at_last_point(rows, "least-squares")
    assert set(model) == set(ols) == {"0", "1", "2", "3"}
    print("error at K=20, transformer vs OLS:", {b: (round(model[b], 4), round(ols[b], 4)) for b in model})
    assert any(model[b] < ols[b] for b in model)


@pytest.mark.xfail(reason="best mean TD reaches 0.68, not 0.8: the cpu preset separates bases 1 and 3 "
                          "but not 0 from 2; see the closing notes of issue 6", strict=False)
def test_task_decodability_rises_from_chance(rows):
    final = max(r.step for r in rows if r.metric == "td")
    print(f"best mean TD: step 0 {_best_td(rows, 0):.3f}, step {final} {_best_td(rows, final):.3f}")
    assert _best_td(rows, 0) <= 0.40
    assert _best_td(rows, final) >= 0.8
