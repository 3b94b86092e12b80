"""The study registry: every study is one explicit Study object, its presets validate, and a
report is refused on a run that did not finish."""

from __future__ import annotations

import pytest

import iclab
from iclab.config import preset_names
from iclab.errors import IclabError, UnknownNameError
from iclab.runs.run import Run
from iclab.studies import STUDIES, get_study
from iclab.studies.study import Study


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_study_is_a_study_object_whose_presets_validate(name):
    study = get_study(name)
    assert isinstance(study, Study) and study.name == name
    assert {"cpu", "paper"} <= set(preset_names(name))
    for preset in preset_names(name):
        assert isinstance(study.load_config(preset), study.config)


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: .*induction-heads"):
        get_study("inducton-heads")


def test_report_of_an_unfinished_run_says_so(tmp_path):
    run = Run.create(tmp_path, "induction-heads", "seed: 0\n", {"preset": "cpu"})
    run.update_meta(status="failed", error="RuntimeError: killed")
    with pytest.raises(IclabError, match="status 'failed' .*RuntimeError: killed.*iclab resume"):
        iclab.report(run.path)
