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


def _classification_rows(model: str, icl: dict[int, float], iwl: dict[int, float]):
    from iclab.rows import Row, Rows

    out = Rows()
    for label, curve, chance in (("fewshot-holdout", icl, 0.5), ("no-support", iwl, 0.031)):
        for step, v in curve.items():
            out += [Row("classification", "accuracy", v, step=step, model=model, label=label),
                    Row("classification", "chance", chance, step=step, model=model, label=label)]
    return out


def test_the_finding_says_transient_icl_in_words_and_does_not_flag_it():
    from iclab.config import load_config
    from iclab.studies.data_properties.config import DataPropertiesConfig
    from iclab.studies.data_properties.report import Results, findings, transience_text

    cfg = load_config(DataPropertiesConfig, "data-properties", "cpu", {"controls": []})
    faded = Results(_classification_rows("p_bursty=0.9", {0: 0.04, 400: 0.95, 2000: 0.03},
                                         {0: 0.03, 400: 0.33, 2000: 1.0}), "p_bursty=0.9")
    text = findings(cfg, [faded])
    assert "learns in context and then loses it (holdout accuracy 0.95 at step 400, 0.03 at step 2000" in text
    assert "IWL 1.00 at the end" in text and "⚠" not in text
    assert "ICL is transient here, peaking at 0.95 at step 400" in transience_text(cfg, [faded])
    never = Results(_classification_rows("p_bursty=0.9", {0: 0.04, 400: 0.6, 2000: 0.03},
                                         {0: 0.03, 400: 0.33, 2000: 1.0}), "p_bursty=0.9")  # peak below 0.5 + 0.2
    assert "does not learn in context" in findings(cfg, [never]) and "⚠" in findings(cfg, [never])
    assert "no transience" in transience_text(cfg, [never])
