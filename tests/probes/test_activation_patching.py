"""The activation-patching sweep on a model with one head built to copy the token two back
(``helpers.copy_head_model``): patching finds that head, and the positions that carry the token."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import copy_head_model, copy_task
from iclab.errors import InputError
from iclab.figures.causal import patching_heatmaps
from iclab.probes.activation_patching import ActivationPatching, patching_sweep
from iclab.probes.contrast import contrast_prompts

LAYER, HEAD, OFFSET, ANSWER, T = 1, 2, 2, 5, 10


@pytest.fixture(scope="module")
def model():
    return copy_head_model(LAYER, HEAD, OFFSET)


@pytest.fixture(scope="module")
def prompts():
    clean, corrupt, replaced = copy_task(n=6, length=T, offset=OFFSET, answer=ANSWER)
    return contrast_prompts(clean, answer=ANSWER, baseline=replaced, corrupt=corrupt)


def test_the_head_sweep_finds_the_copying_head(model, prompts):
    res = ActivationPatching(resid_site=None, head_site="z")(model, prompts)
    heads = res.arrays["heads"]  # (layer, head)
    assert heads.shape == (2, 4)
    assert heads[LAYER, HEAD] > 0.9
    others = np.delete(heads.ravel(), LAYER * 4 + HEAD)
    assert np.abs(others).max() < 0.05, heads
    assert res.rows.where(metric="patch_z", layer=LAYER, head=HEAD).value("patch_z") == heads[LAYER, HEAD]


def test_the_position_sweep_finds_where_the_token_is_read(model, prompts):
    resid = patching_sweep(model, prompts, resid_site="resid_pre", head_site=None)["resid"]  # (layer, pos)
    src = T - 1 - OFFSET
    # the copied token sits at its own position until the head moves it, in both layers' inputs
    assert resid[0, src] > 0.9 and resid[1, src] > 0.9
    # no other position carries it (the last one only receives it, after layer 1)
    assert np.abs(np.delete(resid, src, axis=1)).max() < 0.05, resid
    post = patching_sweep(model, prompts, resid_site="resid_post", head_site=None)["resid"]
    assert post[1, T - 1] > 0.99 and post[1, src] < 0.05  # after the head, it is at the last position only


def test_the_information_is_in_the_values_not_the_pattern(model, prompts):
    """Clean and corrupted prompts differ in one token, not in positions: the built head's
    pattern is the same in both, so patching its pattern (or query, or key) restores nothing,
    and patching its values or its result restores everything."""
    for site, restores in (("v", True), ("result", True), ("pattern", False), ("q", False), ("k", False)):
        heads = patching_sweep(model, prompts, resid_site=None, head_site=site)["heads"]
        assert (heads[LAYER, HEAD] > 0.9) if restores else (abs(heads[LAYER, HEAD]) < 0.05), (site, heads)


def test_identical_prompts_and_missing_corruptions_are_refused(model, prompts):
    same = contrast_prompts(prompts.clean, answer=ANSWER, baseline=prompts.baseline, corrupt=prompts.clean)
    with pytest.raises(InputError, match="score the same"):
        patching_sweep(model, same)
    with pytest.raises(InputError, match="corrupted prompts"):
        patching_sweep(model, contrast_prompts(prompts.clean, answer=ANSWER, baseline=1))
    with pytest.raises(InputError, match="shape"):
        contrast_prompts(prompts.clean, answer=ANSWER, corrupt=prompts.corrupt[:, :-1])


def test_heatmap_figure(model, prompts):
    res = ActivationPatching()(model, prompts)
    fig = patching_heatmaps(res.arrays["resid"], res.arrays["heads"], tokens=prompts.labels)
    assert len(fig.axes) == 4  # two panels and their colour bars
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == prompts.labels
