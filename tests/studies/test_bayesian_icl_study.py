"""bayesian-icl end to end on a tiny model: trained here, then the saved model measured again
through ``--model``; each report rebuilds from the stored run alone."""

from __future__ import annotations

import iclab
from helpers import check_report_rebuilds

TINY = {"train.steps": 4, "train.eval_every": 2, "train.warmup": 0, "train.ckpt_every": 2,
        "world.doc_len": 48, "model.d_model": 16, "model.n_layers": 1, "model.max_len": 64,
        "probe.shots": [0, 1, 4], "probe.lengths": [3, 5], "probe.n_prompts": 8, "lstm.d_model": 8}


def test_trained_and_pretrained_paths_end_to_end(tmp_path):
    run = iclab.run("bayesian-icl", "cpu", overrides=TINY, out=tmp_path / "trained")
    rows = run.load_rows()
    ginc = rows.where(probe="ginc", metric="accuracy")
    assert set(ginc.unique("model")) == {"transformer", "lstm"}
    assert sorted(set(ginc.where(model="transformer").unique("step"))) == [0, 2, 4]
    tf = ginc.where(model="transformer")
    assert set(tf.where(step=0).unique("pos")) == {0, 1, 4}
    assert set(tf.where(step=2).unique("pos")) == {0, 4}  # between the ends: the curve shots only
    assert set(tf.where(step=2).unique("label")) == {"id l=3", "id l=5"}
    assert len(set(tf.where(step=4).unique("label"))) == 8  # four prompt sets, two lengths
    refs = rows.where(probe="ginc", metric="bayes_accuracy", step=4)
    assert all(0 <= r.value <= 1 for r in refs)
    assert ginc.where(model="lstm").unique("step") == [0, 2, 4]  # the LSTM baseline, measured the same way
    assert "LSTM baseline" in (run.path / "report.json").read_text()
    saved = run.path / "models" / "lstm"  # loaded through the Auto classes like any HF model
    again = iclab.run("bayesian-icl", "cpu", overrides=TINY, model=str(saved), out=tmp_path / "loaded")
    final = {(r.label, r.pos): r.value for r in ginc.where(step=4, model="lstm")}
    assert final == {(r.label, r.pos): r.value for r in again.load_rows().where(metric="accuracy")}
    summary = (again.path / "report.json").read_text()
    assert "loaded model" in summary
    check_report_rebuilds(again.path)
    check_report_rebuilds(run.path)
