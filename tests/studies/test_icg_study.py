"""ICG study end to end on a tiny model: trained here, then the saved model measured again
through ``--model``; each report rebuilds from the stored run alone."""

from __future__ import annotations

import iclab
from helpers import check_report_rebuilds

TINY = {"train.steps": 4, "train.eval_every": 2, "train.warmup": 0, "model.size": "tiny", "probe.shots": [1, 2],
        "probe.report_shot": 2, "probe.n_prompts": 6}


def test_trained_and_pretrained_paths_end_to_end(tmp_path):
    run = iclab.run("icg-generalization", "cpu", overrides=TINY, out=tmp_path / "trained")
    rows = run.load_rows()
    assert sorted(set(rows.where(probe="ictr", metric="ictr").unique("step"))) == [0, 2, 4]
    assert set(rows.where(probe="ictr", step=0).unique("pos")) == {1, 2}
    assert set(rows.where(probe="ictr", step=2).unique("pos")) == {2}  # between the ends: the report shot only
    saved = run.path / "models" / "tiny"
    again = iclab.run("icg-generalization", "cpu", overrides=TINY, model=str(saved), out=tmp_path / "loaded")
    final = rows.where(probe="ictr", step=4, metric="ictr")
    assert {(r.label, r.pos): r.value for r in final} == \
        {(r.label, r.pos): r.value for r in again.load_rows().where(metric="ictr")}  # same model, same prompts
    check_report_rebuilds(again.path)
    check_report_rebuilds(run.path)
