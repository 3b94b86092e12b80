"""Tests of the ICG world (spec icg.md, "The world") and its exact oracle.

Known answers come from independent computations: a per-token loop over softmax rows
built here from the chain logits, brute-force enumeration of every topic sequence on a
tiny world, a dense log-sum-exp forward pass, and closed-form priors.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.special import logsumexp, softmax

from iclab.errors import UnknownNameError
from iclab.worlds import icg, icg_oracle
from iclab.worlds.icg import BOS, EOS, SEP, ICGWorld


@pytest.fixture(scope="module")
def world() -> ICGWorld:
    return ICGWorld()


def tiny_world() -> ICGWorld:
    """4 topics, short flat paragraphs: posteriors are spread out, not one-hot."""
    return ICGWorld(arity=2, n_subtopics=2, paragraph_len=4, gamma=1.5, unseen_fraction=0.25,
                    r_repeat=0.5, p_rep=0.3, narrative_share=0.4, seed=3)


# ---------------------------------------------------------------- structure


def test_sizes_follow_the_spec():
    for M, n_topics in [(2, 256), (3, 216), (4, 256)]:
        w = ICGWorld(arity=M)
        assert w.vocab_size == 324 and w.n_topics == n_topics
        sets = [w.topic_set(s) for s in "RCU"]
        assert sum(s.size for s in sets) == n_topics
        assert np.unique(np.concatenate(sets)).size == n_topics
        assert sets[2].size == round(0.1 * n_topics)
        assert w.topic_tuples.shape == (n_topics, M)


def test_every_subtopic_value_occurs_in_a_seen_topic():
    for M, seed in itertools.product((2, 3, 4), range(3)):
        w = ICGWorld(arity=M, unseen_fraction=0.7, seed=seed)
        seen = np.union1d(w.topic_set("R"), w.topic_set("C"))
        for j in range(M):
            assert set(w.topic_tuples[seen, j]) == set(range(w.subtopics_per_slot))


def test_document_layout(world):
    b = world.sample(np.random.default_rng(0), 8)
    L, N = world.paragraph_len, world.n_paragraphs
    assert b.tokens.shape == (8, 1 + N * (L + 1)) and b.tokens.dtype == np.int64
    assert b.info["mode"].shape == (8,) and b.info["topics"].shape == (8, N)
    assert (b.tokens[:, 0] == BOS).all() and (b.tokens[:, -1] == EOS).all()
    body = b.tokens[:, 1:].reshape(8, N, L + 1)
    assert (body[:, :-1, L] == SEP).all()
    assert ((body[:, :, :L] >= 4) & (body[:, :, :L] < 324)).all()


def test_prompt_layout_and_truth(world):
    b = world.prompts(np.random.default_rng(1), 16, topic_set="C", k=3)
    L = world.paragraph_len
    assert b.tokens.shape == (16, 1 + 3 * (L + 1))
    body = b.tokens[:, 1:].reshape(16, 3, L + 1)
    assert (b.tokens[:, 0] == BOS).all() and (body[:, :, L] == SEP).all()
    assert (body[:, :, :L] == b.info["paragraphs"]).all()
    assert np.isin(b.info["topic"], world.topic_set("C")).all()
    with pytest.raises(UnknownNameError, match="known: R, C, U"):
        world.prompts(np.random.default_rng(1), 2, topic_set="X")
    with pytest.raises(ValueError, match="empty"):
        ICGWorld(r_repeat=1.0).prompts(np.random.default_rng(1), 2, topic_set="C")


# ---------------------------------------------------------------- modes and outlines


def test_mode_frequencies_match_the_prior():
    w = ICGWorld(n_paragraphs=2)
    n = 20000
    modes = w.sample(np.random.default_rng(2), n).info["mode"]
    freq = np.bincount(modes, minlength=3) / n
    prior = np.array([0.3, 0.35, 0.35])
    assert np.allclose(w.mode_prior, prior)
    assert np.all(np.abs(freq - prior) < 4 * np.sqrt(prior * (1 - prior) / n))


def test_outlines_obey_the_modes(world):
    b = world.sample(np.random.default_rng(3), 600)
    topics, modes = b.info["topics"], b.info["mode"]
    rep = modes == 0
    assert (topics[rep] == topics[rep, :1]).all()
    assert np.isin(topics[rep, 0], world.topic_set("R")).all()
    assert (topics[~rep, 1:] != topics[~rep, :-1]).all()  # no consecutive repeat
    assert not np.isin(topics, world.topic_set("U")).any()
    assert np.isin(world.topic_set("C"), topics).all()  # C topics do occur
    narr = topics[modes == 1]
    assert (world.narrative_matrix[narr[:, :-1], narr[:, 1:]] > 0).all()


def test_narrative_matrix_is_a_chain_over_seen_topics(world):
    T = world.narrative_matrix
    seen = np.union1d(world.topic_set("R"), world.topic_set("C"))
    assert np.allclose(T[seen].sum(axis=1), 1.0) and np.all(np.diag(T) == 0)
    U = world.topic_set("U")
    assert np.all(T[U] == 0) and np.all(T[:, U] == 0)


# ---------------------------------------------------------------- paragraphs and likelihood


def test_rows_are_the_softmax_of_the_logits(world):
    for slot, value in [(0, 0), (2, 5)]:
        want = softmax(world.chain_logits(slot, value) / world.gamma, axis=1)
        assert np.allclose(world.transition_matrix(slot, value), want, rtol=1e-12, atol=0)


def brute_log_p(w: ICGWorld, x: np.ndarray, t: int) -> float:
    """Per-token loop over rows softmax(ℓ / γ), segment by segment."""
    Ls = w.paragraph_len // w.arity
    total = 0.0
    for j, v in enumerate(w.topic_tuples[t]):
        P = softmax(w.chain_logits(j, v) / w.gamma, axis=1)
        prev = 320  # initial distribution row
        for y in x[j * Ls:(j + 1) * Ls] - 4:
            total += np.log(P[prev, y])
            prev = y
    return total


@pytest.mark.parametrize("arity", [1, 2, 3, 4])
def test_log_p_paragraph_matches_a_per_token_loop(arity):
    w = ICGWorld(arity=arity, n_subtopics=3, unseen_fraction=0.0, gamma=0.8, seed=5)
    rng = np.random.default_rng(4)
    x = w.sample_paragraphs(rng, rng.integers(0, w.n_topics, size=3))  # (3, L)
    x[2, 5] = 4 + rng.integers(0, 320)  # an arbitrary token: rows have full support
    got = w.log_p_paragraph(x)  # (3, n_topics)
    want = np.array([[brute_log_p(w, xi, t) for t in range(w.n_topics)] for xi in x])
    assert np.allclose(got, want, rtol=1e-10)
    paired = w.log_p_paragraph(x, topics=np.array([0, 1, 2]))
    assert np.allclose(paired, want[[0, 1, 2], [0, 1, 2]], rtol=1e-10)


def test_empirical_token_frequencies_match_the_chain():
    w = ICGWorld(arity=2, gamma=0.8)
    t, n = 17, 20000
    x = w.sample_paragraphs(np.random.default_rng(5), np.full(n, t)) - 4  # (n, L)
    Ls = w.paragraph_len // 2
    for j in range(2):
        P = w.transition_matrix(j, w.topic_tuples[t, j])
        first = np.bincount(x[:, j * Ls], minlength=320) / n
        assert np.all(np.abs(first - P[320]) < 4 * np.sqrt(P[320] * (1 - P[320]) / n) + 1e-3)
        prev, nxt = x[:, j * Ls], x[:, j * Ls + 1]
        y = np.bincount(prev).argmax()
        m = (prev == y).sum()
        cond = np.bincount(nxt[prev == y], minlength=320) / m
        assert np.all(np.abs(cond - P[y]) < 4 * np.sqrt(P[y] * (1 - P[y]) / m) + 1e-3)


def test_attribution_recovers_the_topic(world):
    rng = np.random.default_rng(6)
    t = rng.integers(0, world.n_topics, size=2000)  # all topics, U included
    acc = np.mean(world.attribute(world.sample_paragraphs(rng, t)) == t)
    assert acc >= 0.99


def test_malformed_paragraphs_are_refused(world):
    x = world.sample_paragraphs(np.random.default_rng(7), np.array([0, 1]))
    x[1, 3] = SEP
    assert world.is_malformed(x).tolist() == [False, True]
    with pytest.raises(ValueError, match="is_malformed"):
        world.log_p_paragraph(x)


# ---------------------------------------------------------------- oracle


def brute_joint(w: ICGWorld, paragraphs: np.ndarray):
    """p(α, β_{1:k} | x) by enumeration → (p(α, β_k | x) (3, T), p(β_{k+1} | x) (T,))."""
    T, k = w.n_topics, paragraphs.shape[0]
    emit = w.log_p_paragraph(paragraphs)  # (k, T)
    R = set(w.topic_set("R").tolist())
    seen = sorted(R | set(w.topic_set("C").tolist()))
    trans = [np.eye(T), w.narrative_matrix, np.zeros((T, T))]
    for a, b in itertools.permutations(seen, 2):
        trans[2][a, b] = 1 / (len(seen) - 1)
    joint, nxt = np.zeros((3, T)), np.zeros(T)
    for alpha, beta in itertools.product(range(3), itertools.product(range(T), repeat=k)):
        if alpha == 0:
            p = 1 / len(R) if len(set(beta)) == 1 and beta[0] in R else 0.0
        else:
            p = (beta[0] in seen) / len(seen) * np.prod([trans[alpha][a, b] for a, b in zip(beta, beta[1:])])
        p *= w.mode_prior[alpha] * np.exp(sum(emit[i, beta[i]] for i in range(k)))
        joint[alpha, beta[-1]] += p
        nxt += p * trans[alpha][beta[-1]]
    return joint / joint.sum(), nxt / joint.sum()


def test_posterior_and_next_topic_match_enumeration():
    w = tiny_world()
    rng = np.random.default_rng(8)
    for topic_set in "RCU":
        paragraphs = w.prompts(rng, 3, topic_set=topic_set, k=3).info["paragraphs"]  # (3, 3, L)
        post, nxt = w.posterior(paragraphs), w.bayes_next_topic_distribution(paragraphs)
        for i in range(3):
            want_post, want_next = brute_joint(w, paragraphs[i])
            assert np.allclose(post[i], want_post, atol=1e-12)
            assert np.allclose(nxt[i], want_next, atol=1e-12)
    assert 0.05 < post[:, 0].sum(axis=1).max() < 0.95  # the tiny world is genuinely uncertain


def dense_log_joint(w: ICGWorld, paragraphs: np.ndarray) -> np.ndarray:
    """Forward pass with a dense (topic, topic) log-sum-exp, as (batch, 3, T)."""
    emit = w.log_p_paragraph(paragraphs)  # (batch, k, T)
    T = w.n_topics
    R, seen = w.topic_set("R"), np.union1d(w.topic_set("R"), w.topic_set("C"))
    indep = np.zeros((T, T))
    indep[np.ix_(seen, seen)] = 1 / (seen.size - 1)
    np.fill_diagonal(indep, 0)
    out = []
    with np.errstate(divide="ignore"):
        for a, P in enumerate([np.eye(T), w.narrative_matrix, indep]):
            init = np.zeros(T)
            init[R if a == 0 else seen] = 1 / (R.size if a == 0 else seen.size)
            alpha = np.log(init) + emit[:, 0]
            for i in range(1, emit.shape[1]):
                alpha = logsumexp(alpha[:, :, None] + np.log(P)[None], axis=1) + emit[:, i]
            out.append(np.log(w.mode_prior[a]) + alpha)
    return np.stack(out, axis=1)


def test_structured_forward_matches_a_dense_one(world):
    rng = np.random.default_rng(9)
    for topic_set in "RCU":
        paragraphs = world.prompts(rng, 6, topic_set=topic_set, k=4).info["paragraphs"]
        got, want = icg_oracle.log_joint(world, paragraphs), dense_log_joint(world, paragraphs)
        finite = np.isfinite(want)
        assert (np.isfinite(got) == finite).all()
        assert np.allclose(got[finite], want[finite], rtol=1e-9, atol=1e-6)


def test_bayes_ictr_known_answers(world):
    rng = np.random.default_rng(10)
    R, n_seen = world.topic_set("R").size, world.n_topics - world.topic_set("U").size
    one = world.prompts(rng, 50, topic_set="R", k=1)
    # one R paragraph pins its topic; repetition then has weight p_rep/|R| against (1 - p_rep)/|R ∪ C|
    want = (0.3 / R) / (0.3 / R + 0.7 / n_seen)
    assert np.allclose(world.bayes_ictr(one.info["paragraphs"], one.info["topic"]), want, atol=1e-6)
    for topic_set, value in [("R", 1.0), ("C", 0.0), ("U", 0.0)]:
        b = world.prompts(rng, 50, topic_set=topic_set, k=5)
        assert np.allclose(world.bayes_ictr(b.info["paragraphs"], b.info["topic"]), value, atol=1e-6)
        assert np.allclose(world.bayes_next_topic_distribution(b.info["paragraphs"]).sum(axis=1), 1.0)


# ---------------------------------------------------------------- validation and determinism


@pytest.mark.parametrize("params, key", [
    ({"arity": 3, "paragraph_len": 20}, "paragraph_len"),
    ({"r_repeat": 1.5}, "r_repeat"),
    ({"gamma": 0.0}, "gamma"),
    ({"arity": 5}, "arity"),
    ({"colour": "red"}, "colour"),
    ({"arity": 1}, "unseen_fraction"),
    ({"r_repeat": 0.0}, "r_repeat"),
    ({"n_subtopics": 20, "arity": 4}, "n_subtopics"),
])
def test_bad_parameters_fail_naming_the_key(params, key):
    with pytest.raises(ValidationError, match=key):
        ICGWorld(**params)


def test_same_seed_same_world_and_samples():
    a, b, c = ICGWorld(seed=11), ICGWorld(seed=11), ICGWorld(seed=12)
    assert a == b and hash(a) == hash(b) and a != c
    for s in "RCU":
        assert (a.topic_set(s) == b.topic_set(s)).all()
    assert (a.narrative_matrix == b.narrative_matrix).all()
    assert (a.chain_logits(1, 2) == b.chain_logits(1, 2)).all()
    assert not (a.chain_logits(1, 2) == c.chain_logits(1, 2)).all()
    sa, sb = a.sample(np.random.default_rng(0), 4), b.sample(np.random.default_rng(0), 4)
    assert (sa.tokens == sb.tokens).all() and (sa.info["topics"] == sb.info["topics"]).all()


def test_sweeps_keep_what_they_do_not_change():
    low, high = ICGWorld(r_repeat=0.3), ICGWorld(r_repeat=0.6)
    assert np.isin(low.topic_set("R"), high.topic_set("R")).all()  # R grows by inclusion
    assert (low.topic_set("U") == high.topic_set("U")).all()
    assert (low.chain_logits(0, 1) == high.chain_logits(0, 1)).all()
    assert (ICGWorld(gamma=0.9).chain_logits(0, 1) == low.chain_logits(0, 1)).all()


def test_the_world_imports_no_torch_and_no_upper_layer():
    # static: `import iclab` itself may pull torch in (the package API), the world may not
    allowed = {"__future__", "typing", "numpy", "scipy.special", "pydantic",
               "iclab.errors", "iclab.limits", "iclab.worlds", "iclab.worlds.base", "iclab.worlds.icg"}
    for module in (icg, icg_oracle):
        tree = ast.parse(Path(module.__file__).read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert names <= allowed, f"{module.__name__} imports {names - allowed}"
