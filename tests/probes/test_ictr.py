"""Tests of the ICTR probe (spec icg.md, "The metric") and of the study's model knobs.

Known answers come from scripted models whose generations are fixed by construction: a
model that copies the prompt's last paragraph (its ICTR is the attribution accuracy of
that paragraph: 1 up to the oracle's rare ties), one that always writes the same
paragraph of one topic (ICTR 0 wherever that topic is not the prompt's), and one that
breaks some generations with a special token (malformed share known exactly).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from iclab.errors import InputError
from iclab.models.build import build_model, n_params
from iclab.models.capture import capture
from iclab.probes.ictr import ICTR, wilson_interval
from iclab.probes.ictr_sampling import sample_continuations
from iclab.studies.icg_generalization import SIZES, ICGModel
from iclab.worlds.icg import N_SPECIAL, SEP, ICGWorld

L = 12


@pytest.fixture(scope="module")
def world() -> ICGWorld:
    return ICGWorld(arity=4, n_subtopics=3, paragraph_len=L, n_paragraphs=8, gamma=0.3, r_repeat=0.5)


@pytest.fixture(scope="module")
def prompts(world):
    return ICTR(shots=[1, 3], n_prompts=40).prompts(world, np.random.default_rng(0))


class Scripted(nn.Module):
    """A causal LM whose next token is ``rule(tokens)`` with probability 1.

    It has no KV cache, so the sampler feeds it the whole sequence at every step.
    """

    def __init__(self, rule, vocab: int = 324):
        super().__init__()
        self.rule, self.vocab = rule, vocab
        self.dummy = nn.Parameter(torch.zeros(1))  # gives the probe a device
        self.config = SimpleNamespace(vocab_size=vocab)

    def forward(self, input_ids, **kwargs):
        nxt = self.rule(input_ids)  # (batch,)
        logits = torch.full((input_ids.shape[0], 1, self.vocab), -1e9)
        logits[torch.arange(len(nxt)), 0, nxt] = 0.0
        return SimpleNamespace(logits=logits)


def copier(tokens: torch.Tensor) -> torch.Tensor:
    """The token one paragraph (L + 1 tokens) back: continues the last paragraph verbatim."""
    return tokens[:, -(L + 1)]


def fixed_paragraph(paragraph: np.ndarray):
    """Writes ``paragraph`` after the last <sep>, whatever the prompt."""
    p = torch.as_tensor(paragraph)

    def rule(tokens):
        seps = (tokens == SEP).long() * torch.arange(tokens.shape[1])
        j = tokens.shape[1] - 1 - seps.max(dim=1).values  # tokens written since the last <sep>
        return p[j.clamp(max=L - 1)]
    return rule


def breaks_even_prompts(tokens: torch.Tensor) -> torch.Tensor:
    """Copies, but writes <sep> as the third token when the first paragraph's token sum is even."""
    out = copier(tokens).clone()
    seps = (tokens == SEP).long() * torch.arange(tokens.shape[1])
    j = tokens.shape[1] - 1 - seps.max(dim=1).values
    bad = (tokens[:, 1:L + 1].sum(dim=1) % 2 == 0) & (j == 2)
    out[bad] = SEP
    return out


# ---------------------------------------------------------------- known answers


def test_copier_repeats_every_topic_set(world, prompts):
    res = ICTR(shots=[1, 3], n_prompts=40)(Scripted(copier), prompts)
    for s in "RCU":
        b = prompts.batches[s]
        for k in (1, 3):
            # the copy is x_k itself: its ICTR is the attribution accuracy of x_k
            expected = (world.attribute(b.info["paragraphs"][:, k - 1]) == b.info["topic"]).mean()
            assert res.value("ictr", label=s, pos=k) == pytest.approx(expected)
            assert res.value("ictr", label=s, pos=k) == 1.0
            assert res.value("malformed", label=s, pos=k) == 0.0
            gens = res.arrays["generations"][list("RCU").index(s), (1, 3).index(k)]
            np.testing.assert_array_equal(gens, b.info["paragraphs"][:, k - 1])


def test_fixed_other_topic_is_never_a_repetition(world, prompts):
    t_star = world.topic_set("U")[0]
    paragraph = world.sample_paragraphs(np.random.default_rng(5), np.array([t_star]))[0]
    assert world.attribute(paragraph) == t_star
    res = ICTR(shots=[1, 3], n_prompts=40)(Scripted(fixed_paragraph(paragraph)), prompts)
    for s in "RCU":
        expected = (prompts.batches[s].info["topic"] == t_star).mean()
        for k in (1, 3):
            assert res.value("ictr", label=s, pos=k) == pytest.approx(expected)
    assert res.value("ictr", label="R", pos=3) == 0.0 and res.value("ictr", label="C", pos=3) == 0.0


def test_malformed_generations_are_counted_and_never_repetitions(world, prompts):
    res = ICTR(shots=[1, 3], n_prompts=40)(Scripted(breaks_even_prompts), prompts)
    for s in "RCU":
        even = prompts.batches[s].tokens[:, 1:L + 1].sum(axis=1) % 2 == 0
        assert 0 < even.mean() < 1
        assert res.value("malformed", label=s, pos=3) == pytest.approx(even.mean())
        assert res.value("ictr", label=s, pos=3) == pytest.approx(1 - even.mean())


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(81, 100)
    assert (lo, hi) == (pytest.approx(0.7222, abs=1e-4), pytest.approx(0.8748, abs=1e-4))


def test_rows_carry_the_interval_and_the_bayes_reference(world, prompts):
    res = ICTR(shots=[1, 3], n_prompts=40)(Scripted(breaks_even_prompts), prompts)
    assert {r.metric for r in res.rows} == {"ictr", "ictr_lo", "ictr_hi", "malformed", "bayes_ictr"}
    assert {(r.label, r.pos) for r in res.rows} == {(s, k) for s in "RCU" for k in (1, 3)}
    assert all(r.probe == "ictr" for r in res.rows)
    for s in "RCU":
        p = res.value("ictr", label=s, pos=3)
        lo, hi = wilson_interval(round(p * 40), 40)
        assert res.value("ictr_lo", label=s, pos=3) == pytest.approx(lo)
        assert res.value("ictr_hi", label=s, pos=3) == pytest.approx(hi)
    b = prompts.batches["R"]
    ref = world.bayes_ictr(b.info["paragraphs"][:, :3], b.info["topic"]).mean()
    assert res.value("bayes_ictr", label="R", pos=3) == pytest.approx(ref)
    assert res.value("bayes_ictr", label="R", pos=3) > 0.9 > 0.1 > res.value("bayes_ictr", label="U", pos=3)


def test_prompts_are_nested_over_shots(world, prompts):
    long = prompts.shot("C", 3)
    one = prompts.shot("C", 1)
    assert one.shape[1] == 1 + (L + 1) and long.shape[1] == 1 + 3 * (L + 1)
    np.testing.assert_array_equal(long[:, :one.shape[1]], one)
    assert (long[:, -1] == SEP).all() and (one[:, -1] == SEP).all()


# ---------------------------------------------------------------- real models, errors


def test_real_model_same_seed_same_rows_and_cache_matches_full_recompute(world):
    model = build_model(ICGModel(size="tiny").spec(), world.vocab_size, seed=0).eval()
    probe = ICTR(shots=[2], n_prompts=12, batch_size=5)
    p = probe.prompts(world, np.random.default_rng(1))
    a, b = probe(model, p), probe(model, p)
    assert a.rows == b.rows
    np.testing.assert_array_equal(a.arrays["generations"], b.arrays["generations"])

    class NoCache(nn.Module):  # same model, fed the whole sequence at every step
        def __init__(self, m):
            super().__init__()
            self.m, self.config = m, m.config

        def forward(self, input_ids):
            return self.m(input_ids=input_ids)
    c = probe(NoCache(model), p)
    np.testing.assert_array_equal(a.arrays["generations"], c.arrays["generations"])
    assert ICTR(shots=[2], n_prompts=12, seed=1)(model, p).arrays["generations"].tolist() != \
        a.arrays["generations"].tolist()


def test_model_over_another_vocabulary_is_refused(world, prompts):
    with pytest.raises(InputError, match="324 tokens.*50"):
        ICTR(shots=[1, 3], n_prompts=40)(Scripted(copier, vocab=50), prompts)
    no_config = Scripted(lambda t: t[:, -1] % 50, vocab=50)
    del no_config.config
    with pytest.raises(InputError, match="vocabulary of 50"):
        ICTR(shots=[1, 3], n_prompts=40)(no_config, prompts)


def test_parameters_are_validated():
    for bad in ({"shots": [0, 2]}, {"shots": []}, {"n_prompts": 0}, {"topic_sets": ["X"]}, {"confidence": 1.0},
                {"batch": 3}):
        with pytest.raises(ValidationError):
            ICTR(**bad)
    assert ICTR(shots=[5, 1, 5]).shots == [1, 5]
    assert ICTR(topic_sets=["U", "R"]).topic_sets == ["R", "U"]


def test_prompts_from_a_probe_with_fewer_shots_are_refused(world):
    p = ICTR(shots=[1], n_prompts=4).prompts(world, np.random.default_rng(0))
    with pytest.raises(InputError, match="not made by this probe"):
        ICTR(shots=[1, 3], n_prompts=4)(Scripted(copier), p)


# ---------------------------------------------------------------- model knobs (size, H, W)


def test_sliding_window_attention_is_zero_beyond_the_window():
    W = 5  # shorter than a paragraph plus separator (13 tokens here)
    spec = ICGModel(size="tiny", window=W).spec()
    assert spec.family == "mistral" and spec.window == W
    model = build_model(spec, 324, seed=0).eval()
    tokens = torch.randint(N_SPECIAL, 324, (2, 40))
    cache = capture(model, tokens, [f"blocks.{l}.attn.hook_pattern" for l in range(spec.n_layers)])
    i, j = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    for l in range(spec.n_layers):
        pattern = cache[f"blocks.{l}.attn.hook_pattern"]  # (batch, head, query, key)
        assert pattern.shape == (2, spec.n_heads, 40, 40)
        assert (pattern[..., i - j >= W] == 0).all()  # beyond the window
        assert (pattern[..., (i - j >= 0) & (i - j < W)] > 0).all()  # inside it: the token and W - 1 before
        assert (pattern[..., j > i] == 0).all()
    # the KV cache of the sampler respects the window too: same tokens as a full recompute
    x = tokens[:, :30]
    g1 = sample_continuations(model, x, 8, torch.Generator().manual_seed(0))
    seq = x
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        probs = torch.softmax(model(input_ids=seq).logits[:, -1].float(), -1)
        seq = torch.cat([seq, torch.multinomial(probs, 1, generator=gen)], 1)
    torch.testing.assert_close(g1, seq[:, 30:])


def test_model_knobs_heads_window_and_sizes():
    assert ICGModel(size="mini", n_heads=1).spec().n_heads == 1
    assert ICGModel(size="mini", n_heads=2, window=8).label == "mini-H2-W8"
    with pytest.raises(ValidationError, match="divisible"):
        ICGModel(size="mini", n_heads=3)
    with pytest.raises(ValidationError, match="mistral"):
        ICGModel(family="gpt2", window=4)
    with pytest.raises(ValidationError, match="known: tiny"):
        ICGModel(size="huge")
    with torch.device("meta"):  # shapes only: no memory for the 237M-parameter model
        counts = {name: n_params(build_model(ICGModel(size=name).spec(), 324, seed=0)) for name in SIZES}
    assert counts["tiny"] < 1e6 and counts["mini"] < 1e6  # CPU sizes
    assert 3.5e6 < counts["XS"] < 5e6 and 2.2e8 < counts["XL"] < 2.5e8  # the paper's ≈4M to ≈234M
    assert list(counts.values()) == sorted(counts.values())


def test_study_config_keeps_prompts_inside_a_training_document():
    from iclab.config import validate
    from iclab.errors import ConfigError
    from iclab.studies.icg_generalization import ICGGeneralizationConfig

    ok = {"world": {"n_paragraphs": 8, "paragraph_len": 12, "arity": 2}, "probe": {"shots": [1, 7], "report_shot": 7}}
    assert validate(ICGGeneralizationConfig, ok).probe.shots == [1, 7]
    with pytest.raises(ConfigError, match="below world.n_paragraphs = 8"):
        validate(ICGGeneralizationConfig, {**ok, "probe": {"shots": [1, 8], "report_shot": 1}})
    with pytest.raises(ConfigError, match="report_shot=4 must be one of shots"):
        validate(ICGGeneralizationConfig, {**ok, "probe": {"shots": [1, 7], "report_shot": 4}})
