"""data-properties end to end on a tiny model: a bursty model and its non-bursty control trained
here, the saved model measured again through ``--model``, the sweep's heat maps; each report
rebuilds from the stored run alone."""

from __future__ import annotations

import json

import iclab
from helpers import check_report_rebuilds
from iclab.sweep.runner import run_sweep

TINY = {"train.steps": 4, "train.eval_every": 2, "train.warmup": 0, "train.ckpt_every": 2, "train.batch_size": 8,
        "world.n_classes": 512, "world.n_features": 32, "model.d_model": 16, "model.n_heads": 2,
        "probe.n_prompts": 16}


def test_trained_and_pretrained_paths_end_to_end(tmp_path):
    run = iclab.run("data-properties", "cpu", overrides=TINY, out=tmp_path / "trained")
    rows = run.load_rows().where(probe="classification")
    assert set(rows.unique("model")) == {"p_bursty=0.9", "p_bursty=0"}
    assert sorted(set(rows.where(model="p_bursty=0.9").unique("step"))) == [0, 2, 4]
    final = rows.where(model="p_bursty=0.9", step=4)
    assert set(final.unique("label")) == {"fewshot-holdout", "no-support", "fewshot-trained"}
    assert final.value("chance", label="fewshot-holdout") == 0.5
    assert all(0 <= r.value <= 1 for r in rows)
    report = json.loads((run.path / "report.json").read_text())
    assert "p_bursty = 0.9" in report["summary"] and "Over training" in [s["heading"] for s in report["sections"]]
    saved = run.path / "models" / "p_bursty=0"
    again = iclab.run("data-properties", "cpu", overrides=TINY, model=str(saved), out=tmp_path / "loaded")
    before = {(r.label, r.metric): r.value for r in rows.where(model="p_bursty=0", step=4)}
    assert before == {(r.label, r.metric): r.value for r in again.load_rows()}
    assert "loaded model" in (again.path / "report.json").read_text()
    check_report_rebuilds(again.path)
    check_report_rebuilds(run.path)


def test_sweep_draws_the_heat_maps(tmp_path):
    grid = {"world.p_bursty": [0.0, 0.9], "world.zipf_exponent": [1.0], "controls": [[]]}
    res = run_sweep("data-properties", "cpu", {**TINY, "train.steps": 2, "train.eval_every": 2}, grid, tmp_path)
    assert (res.path / "figures" / "sweep_heatmap.png").is_file()
    text = json.dumps(json.loads((res.path / "report.json").read_text()), ensure_ascii=False)
    assert "ICL and IWL over the grid" in text and "α = 1: ICL" in text
