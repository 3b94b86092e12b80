"""Task-vector probes (spec task_vectors.md): TD, prompt encoding, greedy accuracy, patching.

Known answers: TD is 1 on features that are a function of the task and exactly chance on
identical features (through a tiny model and on arrays); a patch at the last layer gives
the next token ``argmax lm_head(ln_f(v))``, computable by hand; task vectors are the means
of the captured states at the arrow tokens. The model is a tiny GPT-2 over a character-level
tokenizer (``char_lm`` in conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from helpers import check_probe_contract
from iclab.errors import InputError
from iclab.models.capture import capture
from iclab.models.hooks import anatomy, hook_count
from iclab.models.names import act_name
from iclab.probes.decodability import LabelledInputs, TaskDecodability, gather_hidden, td_result
from iclab.probes.task_accuracy import TaskAccuracy, correct, exact_match, greedy_continuations
from iclab.probes.task_text import encode_prompts
from iclab.probes.task_vectors import PatchingPrompts, TaskVectorPatching, patch_edits, task_vectors
from iclab.tasks import build_prompts, get_task

N_LAYERS, D_MODEL = 2, 32


# ---------------------------------------------------------------- TD


def test_td_of_separated_clusters_is_one_and_of_identical_points_is_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c", "d"]), 30)
    centres = 20 * rng.standard_normal((4, 8))
    separated = centres[np.repeat(np.arange(4), 30)] + rng.standard_normal((120, 8))
    identical = np.zeros((120, 8))
    noise = rng.standard_normal((120, 8))
    res = td_result(np.stack([separated, identical, noise]), labels, layers=[3, 5, 7])
    assert res.arrays["td"][0] == 1.0
    assert res.arrays["td"][1] == pytest.approx(0.25)  # every vote goes to the first points by index: one task
    assert abs(res.arrays["td"][2] - 0.25) < 0.15
    assert {(r.metric, r.layer) for r in res.rows if r.label is None} == {("td", 3), ("td", 5), ("td", 7)}
    per_task = [r for r in res.rows if r.metric == "td_task" and r.layer == 3]
    assert sorted(r.label for r in per_task) == ["a", "b", "c", "d"] and all(r.value == 1.0 for r in per_task)
    assert {r.probe for r in res.rows} == {"td"}


def test_td_through_a_tiny_model(char_lm):
    # prompts made of one token repeated: the state at any position is a function of that token
    labels = np.repeat(np.arange(4), 12)
    task_tokens = torch.tensor([5, 9, 13, 17])[torch.as_tensor(labels)]
    informative = task_tokens[:, None].repeat(1, 6)  # (48, 6)
    probe = TaskDecodability(k=5, batch_size=7, keep_hidden=True)
    res = probe(char_lm, LabelledInputs(informative, np.full(48, 5), labels))
    assert res.arrays["td"].tolist() == [1.0] * N_LAYERS
    assert res.arrays["hidden"].shape == (N_LAYERS, 48, D_MODEL)
    same = torch.full((48, 6), 5)
    res = probe(char_lm, LabelledInputs(same, np.full(48, 5), labels))
    assert res.arrays["td"].tolist() == [0.25] * N_LAYERS
    assert hook_count(char_lm) == 0


def test_gather_hidden_matches_capture(char_lm):
    ids = torch.randint(0, 40, (5, 9), generator=torch.Generator().manual_seed(1))
    index = np.array([[0, 3], [4, 8], [0, 0], [2, 5]])
    H = gather_hidden(char_lm, ids, index, layers=[1, 0], batch_size=2)
    cache = capture(char_lm, ids, [act_name("resid_post", 0), act_name("resid_post", 1)])
    for li, layer in enumerate([1, 0]):
        for m, (b, p) in enumerate(index):
            np.testing.assert_allclose(H[li, m], cache[act_name("resid_post", layer)][b, p].numpy(), rtol=1e-5,
                                       atol=1e-6)


def test_labelled_inputs_and_layers_are_checked(char_lm):
    with pytest.raises(ValueError, match="positions and labels"):
        LabelledInputs(torch.zeros(3, 4, dtype=torch.long), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="out of range"):
        TaskDecodability(layers=[N_LAYERS])(char_lm, LabelledInputs(torch.zeros(12, 3, dtype=torch.long),
                                                               np.zeros(12), np.arange(12) % 2))


# ---------------------------------------------------------------- text prompts and decoding


def test_encoded_prompts_find_every_arrow(bitwise_enc, char_tokenizer):
    for j, p in enumerate(bitwise_enc.prompts):
        ids = bitwise_enc.ids[j, : bitwise_enc.lengths[j]].tolist()
        assert char_tokenizer.decode(ids) == p.text
        assert bitwise_enc.arrows[j][-1] == bitwise_enc.lengths[j] - 1
        for a, t in zip(p.arrows, bitwise_enc.arrows[j]):
            assert char_tokenizer.decode([ids[t]]) == p.text[a + 1]  # character-level: the '>' of '->'
    assert (bitwise_enc.ids[:, : bitwise_enc.lengths.min()] != bitwise_enc.pad_id).all()
    sub = bitwise_enc.select(bitwise_enc.tasks == "bitwise-xor")
    assert len(sub) == 6 and set(sub.tasks) == {"bitwise-xor"}


def test_slow_tokenizers_are_refused():
    class Slow:
        is_fast = False
    with pytest.raises(InputError, match="fast tokenizer"):
        encode_prompts(Slow(), build_prompts(get_task("bitwise-or"), np.random.default_rng(0), 1))


def test_exact_match():
    assert exact_match(" 01101\n1101", "01101")
    assert not exact_match(" 0110", "01101")
    assert not exact_match("01101 1", "01101")


def test_greedy_decoding_matches_a_hand_loop(char_lm, bitwise_enc):
    texts = greedy_continuations(char_lm, bitwise_enc, max_new_tokens=3, batch_size=4)
    for j in (0, 7, 17):
        ids = bitwise_enc.ids[j, : bitwise_enc.lengths[j]]
        for _ in range(3):
            with torch.no_grad():
                nxt = char_lm(ids[None]).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt[None]])
        new = bitwise_enc.tokenizer.decode(ids[bitwise_enc.lengths[j]:].tolist())
        assert texts[j] == new or ("\n" in new and texts[j] == new[: len(texts[j])])


# ---------------------------------------------------------------- patching


def _final_state_logits(char_lm, h: torch.Tensor) -> torch.Tensor:
    """What the LM head makes of a last-layer residual state: lm_head(ln_f(h))."""
    a = anatomy(char_lm)
    with torch.no_grad():
        return a.unembed(a.final_norm(h))


def test_replace_at_the_last_layer_decides_the_first_token(char_lm, bitwise_enc):
    d = D_MODEL
    vectors = np.random.default_rng(3).standard_normal((len(bitwise_enc), d)).astype(np.float32)
    texts = greedy_continuations(char_lm, bitwise_enc, 1, patch_edits(N_LAYERS - 1, vectors, "replace"), batch_size=5)
    expect = _final_state_logits(char_lm, torch.from_numpy(vectors)).argmax(-1)  # (n,)
    assert texts == [bitwise_enc.tokenizer.decode([t]) for t in expect.tolist()]


def test_add_at_the_last_layer_shifts_the_state(char_lm, bitwise_enc):
    v = 3 * np.random.default_rng(4).standard_normal(D_MODEL).astype(np.float32)
    vectors = np.repeat(v[None], len(bitwise_enc), axis=0)
    texts = greedy_continuations(char_lm, bitwise_enc, 1, patch_edits(N_LAYERS - 1, vectors, "add", scale=2.0),
                                 batch_size=4)
    name = act_name("resid_post", N_LAYERS - 1)
    cache = capture(char_lm, bitwise_enc.ids, [name])
    h = cache[name][torch.arange(len(bitwise_enc)), torch.as_tensor(bitwise_enc.query_positions)]  # (n, d)
    expect = _final_state_logits(char_lm, h + 2.0 * torch.from_numpy(v)).argmax(-1)
    assert texts == [bitwise_enc.tokenizer.decode([t]) for t in expect.tolist()]


def test_task_vectors_are_means_at_the_arrows(char_lm, bitwise_enc):
    vecs = task_vectors(char_lm, bitwise_enc, layers=[0, 1], batch_size=4)
    assert set(vecs) == {"bitwise-xor", "bitwise-and", "bitwise-null"} and vecs["bitwise-and"].shape == (2, D_MODEL)
    name = act_name("resid_post", 1)
    cache = capture(char_lm, bitwise_enc.ids, [name])
    states = [cache[name][j, int(p)] for j in range(len(bitwise_enc)) if bitwise_enc.tasks[j] == "bitwise-and"
              for p in bitwise_enc.arrows[j]]
    np.testing.assert_allclose(vecs["bitwise-and"][1], torch.stack(states).mean(0).numpy(), rtol=1e-5, atol=1e-6)
    last = task_vectors(char_lm, bitwise_enc, layers=[1], where="query")
    q = [cache[name][j, int(bitwise_enc.arrows[j][-1])] for j in range(len(bitwise_enc))
         if bitwise_enc.tasks[j] == "bitwise-and"]
    np.testing.assert_allclose(last["bitwise-and"][0], torch.stack(q).mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_patching_probe_rows(char_lm, bitwise_enc):
    vecs = {t: v[0] for t, v in task_vectors(char_lm, bitwise_enc, layers=[1]).items()}
    queries = bitwise_enc.select(bitwise_enc.tasks != "bitwise-null")
    res = TaskVectorPatching(layer=1, max_new_tokens=2)(char_lm, PatchingPrompts(queries, vecs, "bitwise-null"))
    metrics = {(r.metric, r.label) for r in res.rows}
    assert ("delta_task", "bitwise-xor") in metrics and ("accuracy_null", "bitwise-and") in metrics
    for t in ("bitwise-xor", "bitwise-and"):
        v = {r.metric: r.value for r in res.rows if r.label == t}
        assert v["delta_task"] == pytest.approx(v["accuracy_task"] - v["accuracy_clean"])
    ok, _ = correct(char_lm, queries, max_new_tokens=2)
    np.testing.assert_array_equal(res.arrays["correct_clean"], ok)
    with pytest.raises(InputError, match="no task vector"):
        TaskVectorPatching(layer=1)(char_lm, PatchingPrompts(queries, {"bitwise-xor": vecs["bitwise-xor"]},
                                                        "bitwise-null"))


# ---------------------------------------------------------------- the common probe checks


def _probe_cases(char_lm, enc):
    vecs = {t: v[0] for t, v in task_vectors(char_lm, enc, layers=[1]).items()}
    queries = enc.select(enc.tasks != "bitwise-null")
    return [(TaskDecodability(k=3), LabelledInputs(enc.ids, enc.query_positions, enc.tasks)),
            (TaskAccuracy(max_new_tokens=2), queries),
            (TaskVectorPatching(layer=1, max_new_tokens=2, mode="add"), PatchingPrompts(queries, vecs, "bitwise-null"))]


def test_probes_are_reproducible_fit_the_schema_and_leave_no_hook(char_lm, bitwise_enc):
    for probe, prompts in _probe_cases(char_lm, bitwise_enc):
        check_probe_contract(probe, char_lm, prompts)


def test_probe_parameters_are_validated():
    with pytest.raises(ValidationError, match="k"):
        TaskDecodability(k=0)
    with pytest.raises(ValidationError, match="mode"):
        TaskVectorPatching(layer=0, mode="swap")
    with pytest.raises(ValidationError, match="max_new_tokens"):
        TaskAccuracy(max_new_tokens=0)
