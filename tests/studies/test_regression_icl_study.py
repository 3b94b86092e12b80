"""regression-icl study: end to end on tiny configs (numbers meaningless, every step runs), the shifted
prompts, the finding check of the report, and config errors (spec mechanisms.md, regression-icl)."""

from __future__ import annotations

import numpy as np
import pytest

import iclab
from helpers import check_report_rebuilds
from iclab.baselines import LeastSquares
from iclab.errors import ConfigError, ModelLoadError
from iclab.studies.regression_icl.config import RegressionICLConfig, footprint
from iclab.studies.regression_icl.report import finding
from iclab.studies.regression_icl.shifts import _orthogonal_queries, query_shift_errors
from iclab.worlds.regression import LinearRegression

#: a tiny run that does not depend on the cpu preset's recipe
TINY = {"world.kind": "noisy-linear", "world.dim": 3, "world.points": 7, "world.noise_std": 0.5,
        "world.curriculum": {"points": {"start": 3, "inc": 2, "every": 4}, "dims": {"start": 1, "every": 4}},
        "model.family": "gpt2", "model.n_layers": 2, "model.d_model": 32, "model.n_heads": 2, "model.max_len": 14,
        "train.steps": 12, "train.eval_every": 6, "train.ckpt_every": 6, "train.warmup": 2, "train.batch_size": 16,
        "eval.n_prompts": 24, "eval.eval_every_prompts": 8, "eval.bootstrap": 50, "shifts.n_prompts": 8,
        "probe.n_prompts": 16, "probe.min_examples": 2}


def test_end_to_end_on_noisy_linear_functions(tmp_path):
    run = iclab.run("regression-icl", preset="cpu", overrides=TINY, out=tmp_path)
    rows = run.load_rows()
    final = rows.where(probe="icl_error", label=None)
    assert set(final.unique("model")) == {"transformer", "zero", "least-squares", "averaging", "3-nn", "gd-100",
                                          "ridge"}
    assert set(final.unique("metric")) == {"error", "error_se", "error_lo", "error_hi"}
    assert set(final.unique("pos")) == set(range(7)) and set(final.unique("step")) == {12}
    for model in final.unique("model"):
        m = final.where(model=model)
        for pos in range(7):
            lo, mean, hi = (m.value(k, pos=pos) for k in ("error_lo", "error", "error_hi"))
            assert lo <= mean <= hi
    # with no example, least squares predicts 0
    assert final.value("error", model="least-squares", pos=0) == final.value("error", model="zero", pos=0)
    assert rows.where(probe="icl_error", label="training").unique("step") == [0, 6, 12]
    shifts = rows.where(probe="shift")
    assert set(shifts.unique("label")) == {"scaled-x", "skewed", "orthant", "opposite-orthant", "noisy-y", "subspace"}
    assert set(shifts.where(label="subspace", metric="error").unique("pos")) == {1, 2}  # n < d = 3 only
    assert set(shifts.where(label="orthant", metric="error").unique("pos")) == set(range(1, 7))
    probe = rows.where(probe="linear_probe")
    assert {(r.step, r.layer, r.label) for r in probe} == {
        (s, layer, f"{t}@{tok}") for s in (0, 12) for layer in (0, 1) for t in ("w_ols", "w_ridge", "w_gd", "w_avg", "w",
                                                                           "query") for tok in ("x", "y")}
    assert {p.name for p in (run.path / "figures").iterdir()} == {"error_curves.png", "training.png", "shifts.png",
                                                                 "linear_probe.png", "training_curves.png"}
    assert rows.where(probe="log", metric="loss", model="transformer")  # the training curves (train.log_every)
    html = (run.path / "report.html").read_text()
    assert "At n = 2d = 6 the transformer&#x27;s error is" in html and "α = 0.25 = σ²" in html
    assert "divided by d" in html and run.meta["status"] == "done"
    assert "⚠ Contradicts the expected finding" in html  # 12 steps learn nothing: the summary says so
    assert (run.path / "models" / "transformer" / "model.safetensors").is_file()
    check_report_rebuilds(run.path)


@pytest.mark.parametrize("kind,baselines", [
    ("sparse-linear", {"lasso"}), ("decision-tree", {"tree-4", "tree", "boosting"}), ("relu-net", {"nn-gd"})])
def test_every_class_runs_with_its_baselines(kind, baselines, tmp_path):
    overrides = {**TINY, "world.kind": kind, "world.noise_std": None, "world.sparsity": 2, "world.depth": 2,
                 "world.hidden": 8, "world.curriculum": None, "train.steps": 2, "train.eval_every": 2,
                 "eval.n_prompts": 6, "shifts.kinds": ["scaled-x", "orthant"], "shifts.n_prompts": 4,
                 "eval.baselines": None}
    run = iclab.run("regression-icl", preset="cpu", overrides=overrides, out=tmp_path)
    rows = run.load_rows()
    models = set(rows.where(probe="icl_error", label=None).unique("model"))
    assert baselines <= models and {"transformer", "least-squares", "averaging", "3-nn"} <= models
    assert bool(rows.where(probe="linear_probe")) == (kind == "sparse-linear")
    assert "Expected (Garg et al. 2022)" in (run.path / "report.html").read_text()
    check_report_rebuilds(run.path)


def test_a_saved_model_is_evaluated_without_training(tmp_path):
    first = iclab.run("regression-icl", preset="cpu", overrides=TINY, out=tmp_path / "a")
    model_dir = str(first.path / "models" / "transformer")
    again = iclab.run("regression-icl", preset="cpu", overrides=TINY, model=model_dir, out=tmp_path / "b")
    a, b = (r.load_rows().where(probe="icl_error", label=None, model="transformer") for r in (first, again))
    assert [r.value for r in a] == [r.value for r in b]  # same model, same prompts: the same errors
    assert not again.load_rows().where(probe="train") and f"transformer loaded from {model_dir}" in (
        again.path / "report.html").read_text()
    from safetensors.torch import load_file

    tensors = load_file(first.path / "models" / "transformer" / "model.safetensors")
    weights = sum(t.numel() * t.element_size() for t in tensors.values())  # float32 as saved and as loaded
    assert footprint(RegressionICLConfig(), model_dir).total == weights  # a saved model: its weights
    with pytest.raises(ModelLoadError, match="VectorModel"):  # refused before a run directory is made
        iclab.run("regression-icl", preset="cpu", overrides=TINY, model=str(tmp_path), out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_linear_probe_over_checkpoints_equals_the_studys_at_the_end(tmp_path):
    from iclab.studies.history import probe_checkpoints

    run = iclab.run("regression-icl", preset="cpu", overrides={**TINY, "shifts.kinds": ["scaled-x"],
                                                               "train.keep_checkpoints": {"every": 6}}, out=tmp_path)
    rows = probe_checkpoints(run.path, "linear_probe")
    assert rows.unique("step") == [0, 6, 12]
    study = run.load_rows().where(probe="linear_probe", step=12)
    assert len(rows.where(step=12)) == len([r for r in study if r.label.endswith("@x")]) == 12  # 6 targets, 2 layers
    for r in rows.where(step=12):
        assert r.value == pytest.approx(study.value("r2", layer=r.layer, label=f"{r.label}@x"), abs=1e-6), r


def test_same_seed_same_numbers(tmp_path):
    a, b = (iclab.run("regression-icl", preset="cpu", overrides={**TINY, "shifts.kinds": ["subspace"]},
                      out=tmp_path / k).load_rows().without_timing() for k in "ab")
    assert [(r.metric, r.model, r.pos, r.layer, r.label, r.value) for r in a if r.probe != "train"] == \
           [(r.metric, r.model, r.pos, r.layer, r.label, r.value) for r in b if r.probe != "train"]


# ---------------------------------------------------------------- shifts


def test_subspace_queries_are_orthogonal_to_the_examples_and_keep_their_norm():
    xs = np.random.default_rng(0).standard_normal((5, 6, 4))
    q = _orthogonal_queries(xs)
    assert np.isnan(q[:, 4:]).all() and not np.isnan(q[:, :4]).any()
    for i in range(1, 4):
        np.testing.assert_allclose(np.einsum("bkd,bd->bk", xs[:, :i], q[:, i]), 0, atol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(q[:, i], axis=1), np.linalg.norm(xs[:, i], axis=1))
    np.testing.assert_allclose(q[:, 0], xs[:, 0])


def test_least_squares_predicts_zero_on_a_query_outside_the_span():
    """Known answer: the minimum-norm solution lies in the examples' span, so it predicts 0 at an orthogonal
    query, and its error equals that of predicting 0."""
    world = LinearRegression(dim=5, points=8)

    class Zero:
        def predict(self, xs, ys):
            return np.zeros(np.shape(ys))

    ls = query_shift_errors(LeastSquares().predict, world, "subspace", np.random.default_rng(1), 32)
    zero = query_shift_errors(Zero().predict, world, "subspace", np.random.default_rng(1), 32)
    np.testing.assert_allclose(ls[:, 1:5], zero[:, 1:5], rtol=1e-4, atol=1e-6)
    assert np.isnan(ls[:, 5:]).all() and np.isnan(ls[:, 0]).all()


def test_orthant_prompts():
    seen = []
    world = LinearRegression(dim=4, points=6)

    def record(xs, ys):
        seen.append(xs)
        return np.zeros(np.shape(ys))

    query_shift_errors(record, world, "opposite-orthant", np.random.default_rng(2), 16)
    xs = seen[-1]  # (16, 6, 4): five examples and the query
    signs = np.sign(xs)
    assert (signs[:, :5] == signs[:, :1]).all()  # every example in the prompt's orthant
    assert (signs[:, 5] == -signs[:, 0]).all()  # the query in the opposite one


# ---------------------------------------------------------------- the finding check and the config


def test_footprint_grows_with_the_sizes():
    cfg = RegressionICLConfig()
    base = footprint(cfg).total
    for key, value in (("train", {"batch_size": 4096}), ("model", {**cfg.model.model_dump(), "d_model": 1024}),
                       ("probe", {"n_prompts": 100_000})):
        assert footprint(RegressionICLConfig(**{key: value})).total > base, key


def test_finding_flags_a_contradiction():
    good = {"2d": {"transformer": 0.15, "least-squares": 0.1, "averaging": 0.6}}
    assert finding("noisy-linear", good, {})[0] is True
    assert finding("noisy-linear", {"2d": {**good["2d"], "transformer": 0.25}}, {})[0] is False  # > 2x LS
    assert finding("noisy-linear", {"2d": {**good["2d"], "averaging": 0.1}}, {})[0] is False  # not below averaging
    assert finding("linear", {"2d": {"transformer": 0.015, "least-squares": 1e-13, "averaging": 0.6}}, {})[0] is True
    assert finding("decision-tree", {}, {"transformer": 0.3, "tree-4": 0.5, "tree": 0.4})[0] is True
    ok, text = finding("relu-net", {}, {"transformer": 0.3})
    assert ok is None and "nn-gd" in text


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="noise_std > 0"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "world.noise_std": 0.0})
    with pytest.raises(ConfigError, match="world.kind"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "world.kind": "quadratic"})
    with pytest.raises(ConfigError, match="max_len"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "model.max_len": 8})
    with pytest.raises(ConfigError, match="unknown baseline"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "eval.baselines": [{"baseline": "ols"}]})
    with pytest.raises(ConfigError, match="repeated"):
        iclab.run("regression-icl", preset="cpu",
                  overrides={**TINY, "eval.baselines": [{"baseline": "gd"}, {"baseline": "gd", "params": {"steps": 2}}]})
    with pytest.raises(ConfigError, match="steps"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "eval.baselines": [{"baseline": "gd",
                                                                                        "params": {"steps": 0}}]})
    with pytest.raises(ConfigError, match="sparsity"):
        iclab.run("regression-icl", preset="cpu", overrides={**TINY, "world.kind": "sparse-linear", "world.sparsity": 9})


def test_default_baselines_fit_each_class():
    def names(**world):
        return [e.name for e in RegressionICLConfig(world=world).baselines()]

    assert names(kind="linear") == ["least-squares", "averaging", "3-nn", "gd-100"]
    assert names(kind="noisy-linear")[-1] == "ridge"
    cfg = RegressionICLConfig(world={"kind": "noisy-linear", "noise_std": 0.3})
    assert cfg.baselines()[-1].params == {"alpha": pytest.approx(0.09)}
    assert "lasso" in names(kind="sparse-linear") and "nn-gd" in names(kind="relu-net")
    assert RegressionICLConfig(world={"kind": "sparse-linear", "sparsity": 2}).world.signal == 2.0
