"""Induction-heads study end to end on tiny models: trained here (two depths) and on a saved
pretrained model; each report rebuilds from the stored run alone."""

from __future__ import annotations

import numpy as np

import iclab
from helpers import check_report_rebuilds

TINY = {"layers": [1, 2], "model.d_model": 32, "train.steps": 20, "train.eval_every": 10, "train.ckpt_every": 10,
        "probe.n_prompts": 16, "train.warmup": 2}


def test_trained_models_end_to_end(tmp_path):
    run = iclab.run("induction-heads", "cpu", overrides=TINY, out=tmp_path)
    rows = run.load_rows()
    assert set(rows.unique("model")) == {"L1", "L2"}
    assert sorted(set(rows.where(metric="induction_score", model="L2").unique("step"))) == [0, 10, 20]
    assert len(rows.where(probe="ablation", model="L2")) == 3
    scores = run.load_arrays("L2")
    assert scores["induction_score"].shape == (2, 4) and int(scores["n_params"]) > 0
    np.testing.assert_allclose(scores["induction_score"].max(),
                               rows.where(metric="induction_score", model="L2", step=20).max(), rtol=1e-6)
    check_report_rebuilds(run.path)


def test_pretrained_model_end_to_end(char_lm_dir, tmp_path):
    run = iclab.run("induction-heads", "cpu", overrides={"probe.n_prompts": 8, "probe.half": 10},
                    model=str(char_lm_dir), out=tmp_path)
    assert run.meta["model"] == str(char_lm_dir)
    assert set(run.load_rows().unique("model")) == {str(char_lm_dir)}
    check_report_rebuilds(run.path)


def test_a_model_trained_here_is_scored_on_prompts_of_its_training_length(tmp_path):
    from iclab.models.build import ModelSpec, build_model
    from iclab.models.load import save_trained

    model = build_model(ModelSpec(n_layers=1, d_model=16, n_heads=2, attn_only=True, max_len=64), 30, seed=0)
    save_trained(model, tmp_path / "m", trained_context=24)
    run = iclab.run("induction-heads", "cpu", overrides={"probe.n_prompts": 8}, model=str(tmp_path / "m"),
                    out=tmp_path / "runs")
    rows = run.load_rows()
    assert set(rows.where(probe="induction").unique("pos")) == {24}  # half 12, not the default 50
    assert "the model was trained on sequences of 24" in (run.path / "report.json").read_text()


def test_prompts_longer_than_the_model_are_refused_naming_the_key(tmp_path):
    import pytest

    from iclab.errors import ConfigError
    from iclab.models.build import ModelSpec, build_model

    build_model(ModelSpec(n_layers=1, d_model=16, n_heads=2, max_len=64), 30, seed=0).save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="probe.half = 40: prompts of 80 tokens are longer than the model's 64"):
        iclab.run("induction-heads", "cpu", overrides={"probe.half": 40}, model=str(tmp_path / "m"), out=tmp_path)
