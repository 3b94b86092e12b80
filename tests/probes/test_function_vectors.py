"""Function vectors (Todd et al. 2024) on a model with one head built to copy the token two back.

The task: the answer is always token ``A``. In the clean prompts ``A`` sits where the built
head reads it; in the "shuffled" prompts another token sits there; the zero-shot prompts are
too short for the head to reach back. Only the built head carries the task, so its AIE must
stand out, and its mean output, added to a zero-shot prompt, must make the model answer ``A``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import copy_head_model, copy_task
from iclab.errors import InputError
from iclab.probes.function_vectors import (FunctionVectorPrompts, FunctionVectors, average_indirect_effect,
                                           function_vector, mean_head_outputs)

LAYER, HEAD, OFFSET, A = 1, 2, 2, 5


@pytest.fixture(scope="module")
def model():
    return copy_head_model(LAYER, HEAD, OFFSET)


@pytest.fixture(scope="module")
def prompts():
    clean, shuffled, _ = copy_task(n=8, length=10, offset=OFFSET, answer=A, seed=1)
    zero_shot, _, _ = copy_task(n=6, length=2, offset=0, answer=A, seed=2)
    zero_shot[:, 1] = (zero_shot[:, 0] + 1) % 8
    zero_shot[zero_shot == A] = (A + 2) % 8  # no A anywhere in a zero-shot prompt
    return FunctionVectorPrompts(clean, shuffled, torch.full((8,), A), zero_shot, torch.full((6,), A))


def test_the_copying_head_has_the_largest_average_indirect_effect(model, prompts):
    res = FunctionVectors(n_top_heads=1)(model, prompts)
    aie = res.arrays["aie"]  # (layer, head)
    assert aie.shape == (2, 4)
    assert np.unravel_index(aie.argmax(), aie.shape) == (LAYER, HEAD)
    assert aie[LAYER, HEAD] > 0.5
    assert np.abs(np.delete(aie.ravel(), LAYER * 4 + HEAD)).max() < 0.02, aie
    assert res.arrays["top_heads"].tolist() == [[LAYER, HEAD]]


def test_the_function_vector_makes_zero_shot_prompts_answer(model, prompts):
    res = FunctionVectors(n_top_heads=1)(model, prompts)
    rows = res.rows.where(probe="function_vectors")
    assert rows.where(metric="zero_shot_top1", label="clean").value("zero_shot_top1") == 0.0
    assert rows.where(metric="zero_shot_top1", label="fv").value("zero_shot_top1") == 1.0
    # in a shuffled prompt the built head still copies the other token, as strongly as the vector
    # writes A: the vector lifts A from nothing to about an even match
    assert rows.where(metric="shuffled_top1", label="clean").value("shuffled_top1") == 0.0
    p0 = rows.where(metric="shuffled_prob", label="clean").value("shuffled_prob")
    p1 = rows.where(metric="shuffled_prob", label="fv").value("shuffled_prob")
    assert p0 < 0.05 and p1 > 0.3, (p0, p1)
    assert rows.where(metric="zero_shot_prob", label="fv").value("zero_shot_prob") > 0.5
    assert {r.layer for r in rows.where(metric="zero_shot_top1")} == {0}  # n_layers // 3


def test_the_vector_is_the_sum_of_the_top_heads_mean_results(model, prompts):
    z_mean, r_mean = mean_head_outputs(model, prompts.clean, prompts.clean_pos)
    assert z_mean.shape == (2, 4, 16) and r_mean.shape == (2, 4, 64)
    aie = average_indirect_effect(model, prompts.shuffled, prompts.shuffled_pos, prompts.shuffled_answer, z_mean)
    fv, top = function_vector(r_mean, aie, 3)
    assert top[0] == (LAYER, HEAD) and len(top) == 3
    torch.testing.assert_close(fv, sum(r_mean[l, h] for l, h in top))
    # the built head writes A into the output block the unembedding reads
    out_a = 2 * 8 + 2 * 16 + A
    assert int(r_mean[LAYER, HEAD].argmax()) == out_a


def test_a_layer_beyond_the_model_is_refused(model, prompts):
    with pytest.raises(InputError, match="layers 0..1"):
        FunctionVectors(layer=2)(model, prompts)


def test_prompt_sets_are_validated():
    ids = torch.zeros(3, 5, dtype=torch.long)
    with pytest.raises(InputError, match="shuffled_answer"):
        FunctionVectorPrompts(ids, ids, [1, 2], ids, [1, 2, 3])
    with pytest.raises(InputError, match="read positions"):
        FunctionVectorPrompts(ids, ids, [1, 2, 3], ids, [1, 2, 3], clean_pos=[9, 9, 9])


def test_task_prompts_shuffle_the_demonstrations_labels(char_lm, char_tokenizer):
    from iclab.probes.function_vectors import task_prompts
    from iclab.tasks import get_task

    prompts = task_prompts(char_tokenizer, get_task("bitwise-xor"), np.random.default_rng(0), n=4, k=3)
    space = char_tokenizer(" ", add_special_tokens=False)["input_ids"][0]
    assert (prompts.shuffled_answer == space).all() and (prompts.zero_shot_answer == space).all()
    text = char_tokenizer.decode(prompts.shuffled[0, : int(prompts.shuffled_pos[0]) + 1].tolist())
    lines = text.split("\n")
    assert len(lines) == 4 and lines[-1].endswith("->")  # 3 demonstrations, then the query
    xor = [format(int(a, 2) ^ int(b, 2), f"0{len(a)}b") for a, b in (ln.split(" -> ")[0].split() for ln in lines[:3])]
    outs = [ln.split(" -> ")[1] for ln in lines[:3]]
    assert sorted(outs) == sorted(xor)  # the demonstrations' outputs, permuted among them
    zero = char_tokenizer.decode(prompts.zero_shot[0, : int(prompts.zero_shot_pos[0]) + 1].tolist())
    assert "\n" not in zero and zero.endswith("->")
    res = FunctionVectors(n_top_heads=2, batch_size=4)(char_lm, prompts)
    assert res.arrays["aie"].shape == (2, 4) and res.arrays["function_vector"].shape == (32,)
