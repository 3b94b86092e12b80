"""Induction-circuit probes against cases whose answers are known by construction.

- Attention scores (induction, previous-token, prefix-matching) on attention patterns
  written by hand, with the expected numbers worked out by hand.
- The copying score of a one-layer attention-only llama whose weights are set so that one
  head copies the token it attends to (score 1) and the other head is random (about 1/V).
- The ICL score of a scripted model whose per-position losses are set exactly.
- Head ablation on a model where one head carries all the in-context learning and
  another head writes nothing.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from iclab.models.build import ModelSpec, build_model
from iclab.models.capture import capture
from iclab.models.names import act_name
from iclab.probes.ablation import HeadAblation
from iclab.probes.copying import copying_scores
from iclab.probes.icl_score import ICLScore
from iclab.probes.induction import (InductionScores, induction_score, prefix_matching_keys, prefix_matching_score,
                                    previous_token_score, top_heads)

H = 4  # half length of hand-built prompts: T = 2H = 8
T = 2 * H


# ---------------------------------------------------------------- hand-built attention patterns


def induction_head(T: int, half: int) -> torch.Tensor:
    """(T, T): queries of the second copy attend to the token after their earlier occurrence;
    first-copy queries attend to position 0."""
    A = torch.zeros(T, T)
    for i in range(T):
        A[i, i - half + 1 if i >= half else 0] = 1.0
    return A


def previous_token_head(T: int) -> torch.Tensor:
    A = torch.zeros(T, T)
    A[0, 0] = 1.0
    for i in range(1, T):
        A[i, i - 1] = 1.0
    return A


def uniform_head(T: int) -> torch.Tensor:
    return torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]


def three_heads(T: int = T, half: int = H) -> torch.Tensor:
    """(batch=1, head=3, T, T): induction, previous-token, uniform causal."""
    return torch.stack([induction_head(T, half), previous_token_head(T), uniform_head(T)])[None]


def test_hand_built_patterns_are_valid():
    p = three_heads()
    torch.testing.assert_close(p.sum(-1), torch.ones(1, 3, T))
    assert (p.triu(1) == 0).all()


def test_induction_score_of_hand_built_heads():
    got = induction_score(three_heads(), H)
    uniform = (1 / 5 + 1 / 6 + 1 / 7 + 1 / 8) / 4  # queries 4..7 see 5..8 keys
    torch.testing.assert_close(got, torch.tensor([1.0, 0.0, uniform]))


def test_previous_token_score_of_hand_built_heads():
    got = previous_token_score(three_heads())
    # induction head: only query 1 (attending to 0, its previous token) of the 7 queries 1..7
    uniform = sum(1 / (i + 1) for i in range(1, T)) / (T - 1)
    torch.testing.assert_close(got, torch.tensor([1 / 7, 1.0, uniform]))


def test_scores_average_over_the_batch():
    p = torch.cat([three_heads(), three_heads()[:, [2, 0, 1]]])  # second prompt: heads permuted
    u_ind = (1 / 5 + 1 / 6 + 1 / 7 + 1 / 8) / 4
    torch.testing.assert_close(induction_score(p, H), torch.tensor([(1 + u_ind) / 2, 0.5, u_ind / 2]))


def test_prefix_matching_equals_induction_on_hand_built_heads_with_a_distinct_first_copy():
    tokens = torch.tensor([[3, 1, 4, 2, 3, 1, 4, 2]])
    torch.testing.assert_close(prefix_matching_score(three_heads(), tokens), induction_score(three_heads(), H))
    torch.testing.assert_close(prefix_matching_score(three_heads(), tokens)[0], torch.tensor(1.0))


def test_prefix_matching_equals_induction_on_random_patterns():
    g = torch.Generator().manual_seed(0)
    half, n, heads = 6, 5, 3
    first = torch.stack([torch.randperm(20, generator=g)[:half] for _ in range(n)])  # distinct tokens per row
    tokens = torch.cat([first, first], dim=1)  # (n, 2 * half)
    scores = torch.randn(n, heads, 2 * half, 2 * half, generator=g) * 3
    future = torch.ones(2 * half, 2 * half, dtype=torch.bool).triu(1)
    pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
    torch.testing.assert_close(prefix_matching_score(pattern, tokens), induction_score(pattern, half))


REPEATED = torch.tensor([[5, 7, 5, 9, 5, 7, 5, 9]])
# M[i] = {k : 1 <= k <= i, tokens[k-1] == tokens[i]}, enumerated by hand
REPEATED_KEYS = {0: set(), 1: set(), 2: {1}, 3: set(), 4: {1, 3}, 5: {2}, 6: {1, 3, 5}, 7: {4}}


def test_prefix_matching_keys_enumerated_by_hand():
    M = prefix_matching_keys(REPEATED)[0]
    got = {i: {int(k) for k in torch.nonzero(M[i]).flatten()} for i in range(T)}
    assert got == REPEATED_KEYS


def test_prefix_matching_with_a_repeated_token_in_the_first_copy():
    got = prefix_matching_score(three_heads(), REPEATED)
    # queries with keys: 2, 4, 5, 6, 7
    induction = (0 + 1 + 1 + 1 + 1) / 5  # query 2 attends to key 0, not in {1}
    previous = (1 + 1 + 0 + 1 + 0) / 5  # keys 1, 3, 4, 5, 6 against {1}, {1,3}, {2}, {1,3,5}, {4}
    uniform = (1 / 3 + 2 / 5 + 1 / 6 + 3 / 7 + 1 / 8) / 5
    torch.testing.assert_close(got, torch.tensor([induction, previous, uniform]))
    # the induction score does not see the repeat
    torch.testing.assert_close(induction_score(three_heads(), H)[0], torch.tensor(1.0))


def test_prefix_matching_pools_queries_over_the_batch():
    tokens = torch.cat([REPEATED, torch.tensor([[3, 1, 4, 2, 3, 1, 4, 2]])])
    p = torch.cat([three_heads(), three_heads()])
    # 5 queries with keys in the first prompt, 4 (the second copy) in the second
    want = (torch.tensor([4.0, 3.0, 1 / 3 + 2 / 5 + 1 / 6 + 3 / 7 + 1 / 8])
            + torch.tensor([4.0, 0.0, 1 / 5 + 1 / 6 + 1 / 7 + 1 / 8])) / 9
    torch.testing.assert_close(prefix_matching_score(p, tokens), want)


def test_top_heads():
    s = np.array([[0.1, 0.9, 0.3], [0.8, 0.05, 0.5]])
    assert top_heads(s, 3) == [(0, 1), (1, 0), (1, 2)]
    assert top_heads(s, 3, min_score=0.6) == [(0, 1), (1, 0)]


# ---------------------------------------------------------------- a model built to copy

V = 32  # vocabulary; residual stream: [token one-hot (V) | copied token (V) | unused (2V)]
D_MODEL, D_HEAD = 4 * V, 2 * V  # 2 heads of width 2V (RoPE pairs dim a with a + V)


def one_layer_llama(copy_attends: str, seed: int = 0) -> nn.Module:
    """Attention-only llama, 1 layer, 2 heads, weights set by hand.

    Head 0's OV circuit copies: value = the token one-hot, written into the "copied" block,
    which is all the unembedding reads. Its QK circuit is
    ``copy_attends="same"``: query and key are the token one-hot in dims < V of the head, so
    with RoPE q_i.k_j = s^2 cos((i-j) theta) if the tokens agree and 0 otherwise: a query
    attends (almost) only to keys holding its own token;
    ``copy_attends="uniform"``: zero queries and keys, uniform causal attention.
    Head 1 keeps its random initialisation (random OV circuit).
    """
    model = build_model(ModelSpec(family="llama", n_layers=1, d_model=D_MODEL, n_heads=2, attn_only=True,
                                  max_len=64), V, seed=seed).eval()
    attn = model.model.layers[0].self_attn
    eye = torch.eye(V)
    h0 = slice(0, D_HEAD)
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()[:, :V] = eye
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            proj.weight[h0].zero_()
        if copy_attends == "same":
            attn.q_proj.weight[:V, :V] = eye
            attn.k_proj.weight[:V, :V] = eye
        attn.v_proj.weight[:V, :V] = eye
        attn.o_proj.weight[:, h0].zero_()
        attn.o_proj.weight[V:2 * V, :V] = eye
        model.lm_head.weight.zero_()[:, V:2 * V] = 3 * eye
    return model


def repeated_prompts(n: int, half: int, seed: int) -> torch.Tensor:
    """(n, 2 * half): ``half`` distinct tokens, written twice."""
    g = torch.Generator().manual_seed(seed)
    first = torch.stack([torch.randperm(V, generator=g)[:half] for _ in range(n)])
    return torch.cat([first, first], dim=1)


@pytest.fixture(scope="module")
def copy_model():
    return one_layer_llama("same")


def test_copy_model_does_what_it_was_built_for(copy_model):
    """Precondition: head 0 attends to its own token; the logits favour the current token."""
    tokens = repeated_prompts(4, 8, seed=1)
    c = capture(copy_model, tokens, [act_name("pattern", 0)])
    p = c[act_name("pattern", 0)][:, 0]  # (batch, query, key)
    same = tokens[:, :, None] == tokens[:, None, :]  # (batch, query, key)
    assert (p * same).sum(-1).min() > 0.999
    assert (c.logits.argmax(-1) == tokens).all()


def test_copying_score_is_one_for_the_copying_head_and_chance_for_the_random_one(copy_model):
    tokens = repeated_prompts(16, 8, seed=2)
    names = [act_name("z", 0), act_name("pattern", 0)]
    c = capture(copy_model, tokens, names)
    got = copying_scores(copy_model, 0, c[names[0]], c[names[1]], tokens, queries=range(16))
    assert got[0].item() == 1.0
    assert got[1].item() < 0.2  # chance is 1/32; the copying head scores 5x that at least


def test_copying_score_compares_with_the_attended_token(copy_model):
    """The same outputs scored against a pattern that points one key back: the attended
    token is then never the one the head writes, so the score drops to 0."""
    tokens = repeated_prompts(8, 8, seed=3)
    c = capture(copy_model, tokens, [act_name("z", 0), act_name("pattern", 0)])
    shifted = torch.zeros_like(c[act_name("pattern", 0)])
    idx = torch.arange(1, 16)
    shifted[:, :, idx, idx - 1] = 1.0
    got = copying_scores(copy_model, 0, c[act_name("z", 0)], shifted, tokens, queries=range(8, 16))
    assert got[0].item() == 0.0


def test_induction_probe_rows_match_the_scores_of_captured_patterns(copy_model):
    tokens = repeated_prompts(10, 8, seed=4)
    res = InductionScores(batch_size=4)(copy_model, tokens)  # 3 chunks of 4, 4, 2 prompts
    metrics = ("induction_score", "prefix_matching", "previous_token", "copying")
    assert len(res.rows) == len(metrics) * 1 * 2
    assert {r.probe for r in res.rows} == {"induction"} and {r.layer for r in res.rows} == {0}
    for m in metrics:
        assert res.arrays[m].shape == (1, 2)
        for h in range(2):
            assert res.value(m, layer=0, head=h) == pytest.approx(float(res.arrays[m][0, h]))
    pattern = capture(copy_model, tokens, [act_name("pattern", 0)])[act_name("pattern", 0)]
    np.testing.assert_allclose(res.arrays["induction_score"][0], induction_score(pattern, 8).numpy(), atol=1e-6)
    np.testing.assert_allclose(res.arrays["prefix_matching"][0], prefix_matching_score(pattern, tokens).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(res.arrays["previous_token"][0], previous_token_score(pattern).numpy(), atol=1e-6)
    assert res.value("copying", layer=0, head=0) == 1.0
    assert res.value("copying", layer=0, head=1) < 0.2
    assert res.value("induction_score", layer=0, head=0) < 1e-3  # it attends to its own token, not the next one
    whole = InductionScores()(copy_model, tokens)
    for m in metrics:
        np.testing.assert_allclose(res.arrays[m], whole.arrays[m], atol=1e-6)


def test_induction_probe_rejects_odd_lengths(copy_model):
    with pytest.raises(ValueError, match="even"):
        InductionScores()(copy_model, torch.zeros(2, 7, dtype=torch.long))


# ---------------------------------------------------------------- ICL score on a scripted model


class Scripted(nn.Module):
    """Predicts the true next token ``tokens[b, t]`` at position ``t - 1`` with logit
    ``conf[t] * tokens[b, 0]`` (all other logits 0), so its loss there is
    ``log(1 + (vocab - 1) exp(-conf[t] * tokens[b, 0]))``."""

    def __init__(self, conf: list[float], vocab: int, plain: bool = False):
        super().__init__()
        self.conf = nn.Parameter(torch.tensor(conf), requires_grad=False)
        self.vocab, self.plain = vocab, plain

    def forward(self, input_ids):
        B, T = input_ids.shape
        logits = torch.zeros(B, T, self.vocab)
        scale = self.conf[1:T] * input_ids[:, :1].float()  # (batch, T - 1)
        logits[:, :-1].scatter_(2, input_ids[:, 1:, None], scale[:, :, None])  # logit of the next token
        return logits if self.plain else SimpleNamespace(logits=logits)


def expected_loss(conf_t: float, first: int, vocab: int) -> float:
    a = conf_t * first
    return math.log(1 + (vocab - 1) * math.exp(-a))


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("batch_size", [64, 2])
def test_icl_score_of_a_scripted_model(plain, batch_size):
    vocab, conf = 10, [0.0, 0.1, 0.5, 0.2, 1.5, 2.0, 0.7, 3.0]
    firsts = [1, 2, 3, 1, 2]  # tokens[b, 0] sets each row's confidence scale
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (5, 8), generator=g)
    tokens[:, 0] = torch.tensor(firsts)
    model = Scripted(conf, vocab, plain)
    res = ICLScore(early=2, late=6, batch_size=batch_size)(model, tokens)
    loss = lambda t: sum(expected_loss(conf[t], f, vocab) for f in firsts) / len(firsts)  # noqa: E731
    assert res.value("icl_score") == pytest.approx(loss(6) - loss(2), abs=1e-6)
    assert res.value("loss", pos=2) == pytest.approx(loss(2), abs=1e-6)
    assert res.value("loss", pos=6) == pytest.approx(loss(6), abs=1e-6)
    curve = res.arrays["loss_by_pos"]
    assert curve.shape == (8,) and np.isnan(curve[0])
    np.testing.assert_allclose(curve[1:], [loss(t) for t in range(1, 8)], atol=1e-6)


def test_scripted_model_losses_are_what_the_test_assumes():
    """The scripted model itself, checked against torch's cross-entropy at one position."""
    tokens = torch.tensor([[2, 4, 1, 3]])
    logits = Scripted([0.0, 0.3, 0.6, 0.9], 5)(tokens).logits
    ce = torch.nn.functional.cross_entropy(logits[0, :3], tokens[0, 1:], reduction="none")
    torch.testing.assert_close(ce, torch.tensor([expected_loss(c, 2, 5) for c in (0.3, 0.6, 0.9)]))


def test_icl_score_validates_positions():
    with pytest.raises(ValidationError, match="early"):
        ICLScore(early=5, late=5)
    with pytest.raises(ValidationError):
        ICLScore(early=0, late=3)
    with pytest.raises(ValueError, match="late=8"):
        ICLScore(early=1, late=8)(Scripted([0.0] * 8, 10), torch.zeros(2, 8, dtype=torch.long))


# ---------------------------------------------------------------- head ablation


@pytest.fixture(scope="module")
def counting_model():
    """Head 0 attends uniformly and copies: the logits are (a scaled) count of the tokens seen
    so far, so a token of the second copy is predicted better than one of the first. Head 1
    writes nothing (its output weights are zero). The unembedding reads only what head 0
    writes, so without head 0 every logit is exactly 0."""
    model = one_layer_llama("uniform", seed=5)
    with torch.no_grad():
        model.model.layers[0].self_attn.o_proj.weight[:, D_HEAD:].zero_()
    return model


@pytest.fixture(scope="module")
def counting_prompts():
    return repeated_prompts(6, 8, seed=6)


ICL = ICLScore(early=4, late=12)  # token 4 is unseen when predicted; token 12 is its repeat


def test_ablating_the_only_icl_head_removes_all_icl(counting_model, counting_prompts):
    res = HeadAblation(heads=[(0, 0)], icl=ICL, mode="zero", label="head 0")(counting_model, counting_prompts)
    intact = res.value("icl_score_intact")
    assert intact < -0.5
    assert intact == pytest.approx(ICL(counting_model, counting_prompts).value("icl_score"))
    assert res.value("icl_score_ablated") == 0.0  # uniform logits: loss log V everywhere
    assert res.value("icl_share_removed") == 1.0
    np.testing.assert_allclose(res.arrays["loss_by_pos_ablated"][1:], math.log(V), rtol=1e-6)
    assert {r.label for r in res.rows} == {"head 0"}


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_ablating_a_head_that_writes_nothing_changes_nothing(counting_model, counting_prompts, mode):
    res = HeadAblation(heads=[(0, 1)], icl=ICL, mode=mode)(counting_model, counting_prompts)
    assert res.value("icl_score_ablated") == pytest.approx(res.value("icl_score_intact"), abs=1e-6)
    assert res.value("icl_share_removed") == pytest.approx(0.0, abs=1e-5)


def test_mean_ablation_over_one_prompt_is_no_ablation(counting_model, counting_prompts):
    one = counting_prompts[:1]
    res = HeadAblation(heads=[(0, 0), (0, 1)], icl=ICL, mode="mean")(counting_model, one)
    assert res.value("icl_score_intact") < -0.5
    assert res.value("icl_score_ablated") == pytest.approx(res.value("icl_score_intact"), abs=1e-5)


def test_mean_ablation_replaces_the_head_by_its_mean_over_prompts(counting_model, counting_prompts):
    """The ablated loss curve, recomputed by hand: one attention-only layer, so
    logits = W_U norm(embed + W_O z) with head 0's z replaced by its per-position mean."""
    m, tokens = counting_model, counting_prompts
    res = HeadAblation(heads=[(0, 0)], icl=ICL, mode="mean")(m, tokens)
    z = capture(m, tokens, [act_name("z", 0)])[act_name("z", 0)]  # (batch, pos, head, d_head)
    z = z.clone()
    z[:, :, 0] = z[:, :, 0].mean(0)
    with torch.no_grad():
        resid = m.model.embed_tokens(tokens) + m.model.layers[0].self_attn.o_proj(z.flatten(-2))
        logits = m.lm_head(m.model.norm(resid))  # (batch, pos, vocab)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none").mean(0)
    np.testing.assert_allclose(res.arrays["loss_by_pos_ablated"][1:], loss.numpy(), rtol=1e-5)
    assert res.value("icl_score_ablated") == pytest.approx(float(loss[11] - loss[3]), rel=1e-5)
    # head 0 kept only its average: the prompt's own tokens lost most of their weight
    assert res.value("icl_score_intact") < res.value("icl_score_ablated") < 0


def test_ablation_leaves_no_hooks(counting_model, counting_prompts, hooks_on):
    before = hooks_on(counting_model)
    HeadAblation(heads=[(0, 0), (0, 1)], icl=ICL, mode="mean")(counting_model, counting_prompts)
    assert hooks_on(counting_model) == before
