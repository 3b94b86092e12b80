"""bayesian-icl end to end on a tiny model: trained here, then the saved model measured again
through ``--model``; each report rebuilds from the stored run alone."""

from __future__ import annotations

import iclab
from helpers import check_report_rebuilds

TINY = {"train.steps": 4, "train.eval_every": 2, "train.warmup": 0, "train.ckpt_every": 2,
        "world.doc_len": 48, "model.d_model": 16, "model.n_layers": 1, "model.max_len": 64,
        "probe.shots": [0, 1, 4], "probe.lengths": [3, 5], "probe.n_prompts": 8}


def test_trained_and_pretrained_paths_end_to_end(tmp_path):
    run = iclab.run("bayesian-icl", "cpu", overrides=TINY, out=tmp_path / "trained")
    rows = run.load_rows()
    ginc = rows.where(probe="ginc", metric="accuracy")
    assert sorted(set(ginc.unique("step"))) == [0, 2, 4]
    assert set(ginc.where(step=0).unique("pos")) == {0, 1, 4}
    assert set(ginc.where(step=2).unique("pos")) == {0, 4}  # between the ends: the curve shots only
    assert set(ginc.where(step=2).unique("label")) == {"id l=3", "id l=5"}
    assert len(set(ginc.where(step=4).unique("label"))) == 8  # four prompt sets, two lengths
    refs = rows.where(probe="ginc", metric="bayes_accuracy", step=4)
    assert all(0 <= r.value <= 1 for r in refs)
    saved = run.path / "models" / "transformer"
    again = iclab.run("bayesian-icl", "cpu", overrides=TINY, model=str(saved), out=tmp_path / "loaded")
    final = {(r.label, r.pos): r.value for r in ginc.where(step=4)}
    assert final == {(r.label, r.pos): r.value for r in again.load_rows().where(metric="accuracy")}
    summary = (again.path / "report.json").read_text()
    assert "loaded model" in summary
    check_report_rebuilds(again.path)
    check_report_rebuilds(run.path)
