"""Tests of the GINC world (spec mechanisms.md, bayesian-icl) and its exact Bayesian oracle.

Known answers come from independent computations: brute-force enumeration of every hidden
path of a tiny HMM (for likelihoods, the predictive, the posterior over concepts and the
pretraining predictive), chi-square tests of the sampler's transition counts against the
matrices, and the layout of prompts read back token by token.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import chi2

from iclab.errors import InputError
from iclab.worlds import ginc, ginc_oracle, make_world
from iclab.worlds.ginc import DELIMITER, GINCWorld


def tiny_world(**kw) -> GINCWorld:
    """2 entities x 3 properties, 4 symbols, noisy emissions: tokens are ambiguous, posteriors spread."""
    params = dict(n_symbols=4, n_entities=2, n_properties=3, n_concepts=3, n_pretrain_concepts=2,
                  transition_temp=0.5, transition_floor=0.1, emission_noise=0.2, doc_len=16, seed=4)
    return GINCWorld(**{**params, **kw})


# ---------------------------------------------------------------- structure


def test_registered_with_ginc_default_sizes():
    w = make_world("ginc")
    assert isinstance(w, GINCWorld)
    assert (w.n_symbols, w.n_entities, w.n_properties, w.n_concepts, w.n_pretrain_concepts) == (50, 10, 10, 10, 5)
    assert (w.transition_temp, w.start_temp, w.entity_stickiness) == (0.1, 10.0, 0.9)
    assert w.vocab_size == 50


@pytest.mark.parametrize("params", [{}, {"delimiter_transitions": "shared", "transition_floor": 0.05},
                                    {"emission_noise": 0.3}])
def test_chains_emissions_and_start_are_distributions(params):
    w = GINCWorld(**params)
    assert np.allclose(w.entity_chain.sum(axis=1), 1) and (w.entity_chain >= 0).all()
    assert np.allclose(w.property_chains.sum(axis=2), 1) and (w.property_chains >= 0).all()
    assert np.allclose(w.start_probs.sum(axis=(1, 2)), 1)
    assert np.allclose(w.emission_matrix.sum(axis=0), 1)
    for c in range(w.n_concepts):
        T = w.transition_matrix(c)
        assert T.shape == (100, 100) and np.allclose(T.sum(axis=1), 1)
        # state e * P + p moves to e' * P + p' with V[e, e'] S[p, p']
        assert np.isclose(T[3 * 10 + 2, 7 * 10 + 5], w.entity_chain[3, 7] * w.property_chains[c, 2, 5])
    table = w.emission_table
    assert (table[:, 0] == DELIMITER).all() and (table[:, 1:] >= 1).all() and (table < 50).all()
    assert (w.emission_matrix[DELIMITER, :, 0] == 1).all()  # property 0 always emits the delimiter


def test_ginc_chains_are_peaked_sticky_and_have_zeros():
    """GINC's defaults: peaked permutation mixtures with zero entries; the entity chain sticks at 0.9 + ."""
    w = GINCWorld()
    S = w.property_chains
    assert (S == 0).mean() > 0.2 and S.max(axis=2).mean() > 0.5
    assert (np.diag(w.entity_chain) >= 0.9).all()
    assert not np.allclose(S[0], S[1])


def test_shared_delimiter_transitions_and_floor():
    w = GINCWorld(delimiter_transitions="shared", transition_floor=0.05)
    S = w.property_chains
    assert np.allclose(S[:, 0], S[0, 0]) and np.allclose(S[:, :, 0], S[0, :, 0])  # same for every concept
    assert np.allclose(S[0, 1:, 0], 0.95 / 10 + 0.005)
    assert (S >= 0.005 - 1e-12).all() and (w.entity_chain >= 0.005 - 1e-12).all()
    assert not np.allclose(S[0, 1:, 1:], S[1, 1:, 1:])  # concepts differ among content properties


def test_derived_state_is_seeded_and_concepts_are_kept_when_more_are_added():
    a, b, c = GINCWorld(seed=3), GINCWorld(seed=3), GINCWorld(seed=4)
    assert a == b and hash(a) == hash(b) and a != c and (a.property_chains == b.property_chains).all()
    assert not (a.emission_table == c.emission_table).all()
    more = GINCWorld(seed=3, n_concepts=14)
    assert np.array_equal(more.property_chains[:10], a.property_chains)
    assert np.array_equal(more.emission_table, a.emission_table)
    assert list(a.concept_set("pretrain")) == [0, 1, 2, 3, 4] and list(a.concept_set("unseen")) == [5, 6, 7, 8, 9]


# ---------------------------------------------------------------- documents and their statistics


def test_document_layout_and_truth():
    w = GINCWorld(doc_len=64)
    b = w.sample(np.random.default_rng(0), 12)
    assert b.tokens.shape == (12, 64) and b.tokens.dtype == np.int64 and b.loss_mask is None
    assert np.isin(b.info["concept"], w.concept_set("pretrain")).all()
    assert (b.tokens == w.emission_table[b.info["entity"], b.info["property"]]).all()  # deterministic emissions
    assert ((b.tokens == DELIMITER) == (b.info["property"] == 0)).all()


def _chi_square_rows(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson's statistic over the rows of a transition count table and its degrees of freedom,
    cells with expected count < min_expected pooled per row."""
    stat, dof = 0.0, 0
    for c, p in zip(counts, probs):
        n = c.sum()
        if n == 0:
            continue
        e = n * p
        big = e >= min_expected
        obs = np.append(c[big], c[~big].sum())
        exp = np.append(e[big], e[~big].sum())
        keep = exp > 0
        stat += (((obs - exp) ** 2)[keep] / exp[keep]).sum()
        dof += keep.sum() - 1
    return stat, dof


@pytest.mark.parametrize("params", [{}, {"delimiter_transitions": "shared", "transition_floor": 0.05,
                                         "n_properties": 5, "n_entities": 4}])
def test_transition_frequencies_match_the_matrices(params):
    w = GINCWorld(doc_len=200, transition_temp=0.5, **params)
    b = w.sample(np.random.default_rng(1), 600)
    E, P = w.n_entities, w.n_properties
    ent, prop, concept = b.info["entity"], b.info["property"], b.info["concept"]
    # the entity chain, pooled over concepts
    counts = np.zeros((E, E))
    np.add.at(counts, (ent[:, :-1].ravel(), ent[:, 1:].ravel()), 1)
    stat, dof = _chi_square_rows(counts, w.entity_chain)
    assert chi2.sf(stat, dof) > 1e-3, (stat, dof)
    # each pretraining concept's property chain
    for c in w.concept_set("pretrain"):
        rows = concept == c
        counts = np.zeros((P, P))
        np.add.at(counts, (prop[rows, :-1].ravel(), prop[rows, 1:].ravel()), 1)
        stat, dof = _chi_square_rows(counts, w.property_chains[c])
        assert chi2.sf(stat, dof) > 1e-3, (c, stat, dof)
        assert counts[w.property_chains[c] == 0].sum() == 0  # zero entries are never taken


def test_start_states_follow_the_start_distribution():
    w = GINCWorld(n_entities=3, n_properties=3, doc_len=2)
    b = w.sample(np.random.default_rng(2), 40000)
    for c in w.concept_set("pretrain"):
        rows = b.info["concept"] == c
        first = b.info["entity"][rows, 0] * 3 + b.info["property"][rows, 0]
        stat, dof = _chi_square_rows(np.bincount(first, minlength=9)[None], w.start_probs[c].reshape(1, 9))
        assert chi2.sf(stat, dof) > 1e-3


def test_emission_noise_rate():
    w = GINCWorld(emission_noise=0.3, doc_len=100)
    b = w.sample(np.random.default_rng(3), 200)
    content = b.info["property"] != 0
    changed = b.tokens != w.emission_table[b.info["entity"], b.info["property"]]
    # a noisy draw keeps the table's token with probability 1 / (n_symbols - 1)
    want = 0.3 * (1 - 1 / 49)
    n = content.sum()
    assert abs(changed[content].mean() - want) < 4 * np.sqrt(want * (1 - want) / n)
    assert (b.tokens[~content] == DELIMITER).all() and (b.tokens[content] != DELIMITER).all()


# ---------------------------------------------------------------- prompts


def test_prompt_layout_answer_and_truth():
    w = GINCWorld()
    k, l, n = 4, 5, 64
    b = w.prompts(np.random.default_rng(4), n, k=k, l=l)
    ex = b.info["examples"]
    assert b.tokens.shape == (n, k * (l + 1) + l - 1) and ex.shape == (n, k + 1, l)
    body = b.tokens[:, :k * (l + 1)].reshape(n, k, l + 1)
    assert (body[:, :, l] == DELIMITER).all() and (body[:, :, :l] == ex[:, :k]).all()
    assert (b.tokens[:, -(l - 1):] == ex[:, -1, :-1]).all()  # the test input comes last
    assert (b.info["sampled_answer"] == ex[:, -1, -1]).all()
    assert np.isin(b.info["concept"], w.concept_set("pretrain")).all()
    assert ((b.info["start_property"] >= 1) & (b.info["start_property"] < 10)).all()
    p = w.next_token_given(ex[:, -1, :-1], b.info["concept"], b.info["start_property"])  # (n, V)
    assert (b.info["answer"] == p.argmax(axis=1)).all()  # the lowest of the most likely tokens
    best = p.max(axis=1, keepdims=True)
    assert (b.info["answer_set"] == (p >= best - 1e-9)).all()
    assert b.info["answer_set"][np.arange(n), b.info["answer"]].all()
    # the sampled last token agrees with the true concept's argmax more often than not
    assert (b.info["answer"] == b.info["sampled_answer"]).mean() > 0.4


def test_examples_start_at_the_shared_property_with_a_uniform_entity():
    w = GINCWorld(n_entities=4)
    ex = w.sample_examples(np.random.default_rng(5), 3000, 2, 3, "unseen")
    assert (ex["property"][:, :, 0] == ex["start_property"][:, None]).all()
    assert np.isin(ex["concept"], w.concept_set("unseen")).all()
    freq = np.bincount(ex["entity"][:, :, 0].ravel(), minlength=4) / 9000
    assert np.all(np.abs(freq - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 9000))
    assert (ex["examples"] == w.emission_table[ex["entity"], ex["property"]]).all()


def test_zero_shot_and_other_separators():
    w = GINCWorld()
    ex = w.sample_examples(np.random.default_rng(6), 8, 3, 4)["examples"]  # (8, 4, 4)
    none = w.layout(ex, "none")
    assert none.shape == (8, 3 * 4 + 3) and (none[:, :12] == ex[:, :3].reshape(8, 12)).all()
    shuffled = w.layout(ex, "shuffled", np.random.default_rng(0))
    body = shuffled[:, :15]
    assert shuffled.shape == (8, 15 + 3) and (shuffled[:, 15:] == ex[:, -1, :3]).all()
    content = ex[:, :3].reshape(8, 12)
    for row, want in zip(body, content):
        delim = row == DELIMITER
        assert delim.sum() >= 3  # k moved delimiters (plus any the examples hold)
        assert list(row[~delim]) == [t for t in want if t != DELIMITER]  # example tokens in order
    assert not (shuffled[:, :15].reshape(8, 3, 5)[:, :, 4] == DELIMITER).all()  # not at the boundaries
    zero = w.layout(ex[:, -1:], "delimiter")
    assert (zero == ex[:, -1, :3]).all()  # k = 0: the test input alone
    with pytest.raises(InputError, match="rng"):
        w.layout(ex, "shuffled")
    with pytest.raises(InputError, match="known: delimiter, none, shuffled"):
        w.layout(ex, "commas")
    with pytest.raises(InputError, match="empty"):
        GINCWorld(n_concepts=5).prompts(np.random.default_rng(0), 2, concepts="unseen")
    with pytest.raises(InputError, match="l >= 2"):
        w.prompts(np.random.default_rng(0), 2, k=1, l=1)


# ---------------------------------------------------------------- the oracle against brute force


def _paths(world: GINCWorld, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Every hidden path of length L as (paths, L) entity and property indices."""
    N, P = world.n_entities * world.n_properties, world.n_properties
    idx = np.array(list(itertools.product(range(N), repeat=L)))  # (paths, L) state indices
    return idx // P, idx % P


def brute_joint(world: GINCWorld, tokens: np.ndarray, concept: int, first: np.ndarray) -> np.ndarray:
    """p(tokens, h_L = state | θ) by summing over every path, (E P,); ``first`` is p(h_1) (E P,)."""
    L = len(tokens)
    e, p = _paths(world, L)
    V, S, B = world.entity_chain, world.property_chains[concept], world.emission_matrix
    prob = first[e[:, 0] * world.n_properties + p[:, 0]]
    for t in range(L):
        if t:
            prob = prob * V[e[:, t - 1], e[:, t]] * S[p[:, t - 1], p[:, t]]
        prob = prob * B[tokens[t], e[:, t], p[:, t]]
    return np.bincount(e[:, -1] * world.n_properties + p[:, -1], weights=prob,
                       minlength=world.n_entities * world.n_properties)


def brute_next(world: GINCWorld, tokens: np.ndarray, concept: int, first: np.ndarray) -> tuple[float, np.ndarray]:
    """(p(tokens | θ), p(next token | tokens, θ)) by enumeration."""
    last = brute_joint(world, tokens, concept, first)
    T = world.transition_matrix(concept)
    B = world.emission_matrix.reshape(world.n_symbols, -1)
    total = last.sum()
    return total, (B @ (last @ T)) / total if total > 0 else np.zeros(world.n_symbols)


def example_start(world: GINCWorld, s0: int) -> np.ndarray:
    first = np.zeros((world.n_entities, world.n_properties))
    first[:, s0] = 1 / world.n_entities
    return first.reshape(-1)


def test_likelihoods_and_predictive_match_enumeration():
    w = tiny_world()
    ex = w.sample_examples(np.random.default_rng(7), 5, 2, 4, "all")["examples"]  # (5, 3, 4)
    ll = w.log_likelihood(ex)  # (5, 3, C, P - 1)
    for i, j in itertools.product(range(5), range(3)):
        for c, s0 in itertools.product(range(w.n_concepts), range(1, w.n_properties)):
            p, _ = brute_next(w, ex[i, j], c, example_start(w, s0))
            assert np.isclose(np.exp(ll[i, j, c, s0 - 1]), p, rtol=1e-10, atol=0)
    concept = np.array([0, 1, 2, 1, 0])
    start = np.array([1, 2, 2, 1, 1])
    got = w.next_token_given(ex[:, -1, :-1], concept, start)
    for i in range(5):
        _, want = brute_next(w, ex[i, -1, :-1], concept[i], example_start(w, start[i]))
        assert np.allclose(got[i], want, atol=1e-12)


def brute_bayes(world: GINCWorld, examples: np.ndarray, concepts) -> tuple[np.ndarray, np.ndarray]:
    """p(θ, s_0 | prompt) (C, P - 1) and p(answer | prompt) (V,) by enumerating every
    hypothesis and, for the prompt as a whole, every joint path of its examples."""
    k = examples.shape[0] - 1
    post = np.zeros((len(concepts), world.n_properties - 1))
    nxt = np.zeros(world.n_symbols)
    for (a, c), s0 in itertools.product(enumerate(concepts), range(1, world.n_properties)):
        first = example_start(world, s0)
        # joint over all examples: paths of the examples times paths of the test input
        lik = 1.0
        for i in range(k):
            lik *= brute_joint(world, examples[i], c, first).sum()
        p_test, pred = brute_next(world, examples[-1, :-1], c, first)
        post[a, s0 - 1] = lik * p_test
        nxt += lik * p_test * pred
    return post / post.sum(), nxt / post.sum()


def test_bayes_posterior_and_predictive_match_enumeration():
    w = tiny_world()
    rng = np.random.default_rng(8)
    for concepts in ("pretrain", "all"):
        ex = w.sample_examples(rng, 4, 3, 3, "all")["examples"]  # (4, 4, 3)
        support = w.concept_set(concepts)
        post = ginc_oracle.posterior(w, ex, support)
        by_k = ginc_oracle.bayes_by_shots(w, ex, [0, 1, 3], support)
        for i in range(4):
            want_post, want_next = brute_bayes(w, ex[i], list(support))
            assert np.allclose(post[i], want_post, atol=1e-12)
            assert np.allclose(by_k[3][i], want_next, atol=1e-12)
            for k in (0, 1):  # nested prompts: the first k examples and the test example
                sub = np.concatenate([ex[i, :k], ex[i, -1:]])
                assert np.allclose(by_k[k][i], brute_bayes(w, sub, list(support))[1], atol=1e-12)
        assert np.allclose(w.bayes_next_token(ex, concepts), by_k[3], atol=1e-14)
    assert 0.05 < post.max(axis=(1, 2)).min() < 0.95  # the tiny world is genuinely uncertain


def test_brute_force_joint_paths_agree_with_independent_examples():
    """The enumeration above multiplies per-example sums; check once against paths over the
    whole prompt (two examples jointly), so the independence it uses is the world's."""
    w = tiny_world()
    ex = w.sample_examples(np.random.default_rng(9), 1, 1, 3, "all")["examples"][0]  # (2, 3)
    c, s0 = 1, 2
    first = example_start(w, s0)
    e1, p1 = _paths(w, 3)
    e2, p2 = _paths(w, 2)
    V, S, B = w.entity_chain, w.property_chains[c], w.emission_matrix

    def path_prob(e, p, x):
        prob = first[e[:, 0] * w.n_properties + p[:, 0]] * B[x[0], e[:, 0], p[:, 0]]
        for t in range(1, len(x)):
            prob = prob * V[e[:, t - 1], e[:, t]] * S[p[:, t - 1], p[:, t]] * B[x[t], e[:, t], p[:, t]]
        return prob

    joint = np.outer(path_prob(e1, p1, ex[0]), path_prob(e2, p2, ex[1, :2])).sum()
    ll = w.log_likelihood(ex[0])[c, s0 - 1] + w.log_likelihood(ex[1, :2])[c, s0 - 1]
    assert np.isclose(np.log(joint), ll, rtol=1e-12)


def test_pretraining_predictive_matches_enumeration():
    w = tiny_world()
    ex = w.sample_examples(np.random.default_rng(10), 3, 1, 3, "pretrain")["examples"]
    tokens = w.layout(ex)  # (3, 3 + 1 + 2): one example, the delimiter, the test input
    got = ginc_oracle.pretraining_predictive(w, tokens)
    for i in range(3):
        num, den = np.zeros(w.n_symbols), 0.0
        for c in w.concept_set("pretrain"):
            p, pred = brute_next(w, tokens[i], c, w.start_probs[c].reshape(-1))
            num, den = num + p * pred, den + p
        assert np.allclose(got[i], num / den, atol=1e-12)


def test_impossible_prompts_have_no_posterior():
    w = GINCWorld()  # deterministic emissions, chains with zeros
    ex = w.sample_examples(np.random.default_rng(11), 60, 16, 5, "unseen")["examples"]
    probs = w.bayes_next_token(ex, "pretrain")
    bad = np.isnan(probs).any(axis=1)
    assert bad.mean() > 0.5  # most unseen-concept prompts are impossible under every pretraining concept
    assert (ginc_oracle.predict(probs)[bad] == -1).all()
    assert np.allclose(probs[~bad].sum(axis=1), 1)
    assert not np.isnan(w.bayes_next_token(ex, "all")).any()  # the true concept is in the support


def test_bayes_accuracy_rises_with_k_to_one():
    w = GINCWorld()
    ex = w.sample_examples(np.random.default_rng(12), 300, 16, 3)
    by_k = ginc_oracle.bayes_by_shots(w, ex["examples"], [0, 1, 16], w.concept_set("pretrain"))
    acc = {k: (ginc_oracle.predict(p) == ex["answer"]).mean() for k, p in by_k.items()}  # GINC's tie rule
    assert acc[0] < 0.8 < acc[1] < acc[16] and acc[16] >= 0.99


def test_tied_answers_form_a_set():
    """Repeated tokens in the table make exact ties; the answer set keeps every tied token."""
    w = GINCWorld(n_symbols=20, n_entities=5, n_properties=5, n_concepts=6, n_pretrain_concepts=3,
                  delimiter_transitions="shared", transition_floor=0.05)
    ex = w.sample_examples(np.random.default_rng(13), 2000, 0, 3)
    sizes = ex["answer_set"].sum(axis=1)
    assert (sizes >= 1).all() and 0.01 < (sizes > 1).mean() < 0.2
    p = w.next_token_given(ex["examples"][:, -1, :-1], ex["concept"], ex["start_property"])
    tied = np.nonzero(sizes > 1)[0]
    top2 = np.sort(p[tied], axis=1)[:, -2:]
    assert np.allclose(top2[:, 0], top2[:, 1], atol=1e-9)
    assert ginc_oracle.answer_set(np.array([[0.1, 0.45, 0.45]])).tolist() == [[False, True, True]]


def test_oracle_refuses_bad_inputs():
    w = tiny_world()
    with pytest.raises(InputError, match="shape"):
        ginc_oracle.bayes_by_shots(w, np.zeros((2, 3)), [0])
    with pytest.raises(InputError, match="shots"):
        ginc_oracle.bayes_by_shots(w, np.zeros((2, 2, 3), dtype=int), [2])
    with pytest.raises(InputError, match="concepts"):
        ginc_oracle.bayes_by_shots(w, np.zeros((2, 2, 3), dtype=int), [1], [7])
    with pytest.raises(InputError, match="concept set"):
        w.concept_set("seen")


# ---------------------------------------------------------------- validation and layering


@pytest.mark.parametrize("params, key", [
    ({"n_pretrain_concepts": 11}, "n_pretrain_concepts"),
    ({"n_properties": 1}, "n_properties"),
    ({"transition_temp": 0.0}, "transition_temp"),
    ({"emission_noise": 1.0}, "emission_noise"),
    ({"delimiter_transitions": "free"}, "delimiter_transitions"),
    ({"colour": "red"}, "colour"),
])
def test_bad_parameters_fail_naming_the_key(params, key):
    with pytest.raises(ValidationError, match=key):
        GINCWorld(**params)


def test_the_world_imports_no_torch_and_no_upper_layer():
    allowed = {"__future__", "typing", "collections.abc", "numpy", "scipy.special", "pydantic",
               "iclab.errors", "iclab.limits", "iclab.worlds", "iclab.worlds.base", "iclab.worlds.ginc"}
    for module in (ginc, ginc_oracle):
        tree = ast.parse(Path(module.__file__).read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert names <= allowed, f"{module.__name__} imports {names - allowed}"


# ---------------------------------------------------------------- sampling equals the per-step loop


def reference_run(w: GINCWorld, rng, concept, e0, p0, length):
    """GINCWorld._run as a plain loop over positions, one rng.random((2, rows)) per step (the
    implementation before the vectorised walk); the vectorised one must match it token for token."""
    rows = concept.shape[0]
    entity = np.empty((rows, length), dtype=np.int64)
    prop = np.empty((rows, length), dtype=np.int64)
    entity[:, 0], prop[:, 0] = e0, p0
    for t in range(1, length):
        u = rng.random((2, rows))
        entity[:, t] = ginc._draw(u[0], w._cdf_V[entity[:, t - 1]])
        prop[:, t] = ginc._draw(u[1], w._cdf_S[concept, prop[:, t - 1]])
    return entity, prop


def preset_world(preset: str) -> GINCWorld:
    from iclab.config import load_config
    from iclab.studies.bayesian_icl.config import BayesianICLConfig
    return load_config(BayesianICLConfig, "bayesian-icl", preset).world


def draws_of(w: GINCWorld, seed: int, n: int) -> list:
    """Everything sample and prompts return for one rng, and the rng's state afterwards."""
    rng = np.random.default_rng(seed)
    doc = w.sample(rng, n)
    out = [doc.tokens, doc.info["concept"], doc.info["entity"], doc.info["property"]]
    for kw in ({"k": 3, "l": 4}, {"k": 0, "l": 2, "concepts": "all"},
               {"k": 5, "l": 3, "concepts": "unseen", "separator": "shuffled"}):
        p = w.prompts(rng, n, **kw)
        out += [p.tokens, p.info["examples"], p.info["answer_set"]]
    return out + [rng.bit_generator.state, rng.random(3)]


def assert_same_draws(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        else:
            assert x == y  # the generator's state dict


@pytest.mark.parametrize("world", [
    pytest.param(lambda: preset_world("cpu"), id="cpu-preset"),
    pytest.param(lambda: preset_world("paper"), id="paper-preset"),
    pytest.param(lambda: tiny_world(), id="tiny"),
    pytest.param(lambda: GINCWorld(n_entities=3, n_properties=7, doc_len=37), id="E<P"),
    pytest.param(lambda: GINCWorld(n_entities=8, n_properties=2, n_concepts=3, n_pretrain_concepts=1,
                                   doc_len=2), id="E>P-len2"),
])
def test_sampling_matches_the_per_step_loop_token_for_token(world, monkeypatch):
    w = world()
    for seed, n in [(0, 8), (1, 32), (2, 1), (12345, 5)]:
        fast = draws_of(w, seed, n)
        with monkeypatch.context() as m:
            m.setattr(GINCWorld, "_run", reference_run)
            slow = draws_of(w, seed, n)
        assert_same_draws(fast, slow)


def test_one_block_of_uniforms_is_the_per_step_stream():
    for seed, rows, length in [(0, 8, 1024), (1, 32, 160), (2, 7, 3), (3, 1, 2)]:
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        steps = np.stack([a.random((2, rows)) for _ in range(length - 1)])
        assert np.array_equal(steps, b.random((length - 1, 2, rows)))
        assert a.bit_generator.state == b.bit_generator.state


class _Stream:
    """A stand-in generator whose random() hands out a fixed list of numbers in order."""

    def __init__(self, values):
        self.values, self.i = np.asarray(values, dtype=np.float64), 0

    def random(self, size):
        n = int(np.prod(size))
        out = self.values[self.i:self.i + n].reshape(size)
        self.i += n
        return out


@pytest.mark.parametrize("fallback", [False, True], ids=["tables", "compare"])
@pytest.mark.parametrize("params", [{}, {"n_entities": 5, "n_properties": 5, "transition_floor": 0.05,
                                         "delimiter_transitions": "shared"}, {"n_entities": 4, "n_properties": 6}])
def test_uniforms_on_cdf_boundaries_draw_as_the_loop(params, fallback, monkeypatch):
    # u exactly on a CDF value (a tie: _draw counts cdf <= u), just below and above it, 0 and the
    # largest double below 1 (the last column, 1.0, is never reached)
    if fallback:
        monkeypatch.setattr(ginc, "MAX_MOVE_TABLE", 0)
    w = GINCWorld(**params)
    assert (w._moves is None) == fallback
    cdf = np.unique(np.concatenate([w._cdf_V.ravel(), w._cdf_S.ravel()]))
    cdf = cdf[cdf < 1.0]
    u = np.concatenate([cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 1.0), [0.0, np.nextafter(1.0, 0.0)]])
    rng = np.random.default_rng(0)
    rows, length = 12, 60
    values = rng.permutation(np.resize(u, (length - 1) * 2 * rows))
    concept = rng.integers(0, w.n_concepts, size=rows)
    e0, p0 = rng.integers(0, w.n_entities, size=rows), rng.integers(0, w.n_properties, size=rows)
    fast = w._run(_Stream(values), concept, e0, p0, length)
    slow = reference_run(w, _Stream(values), concept, e0, p0, length)
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    # every state's move at every such u, as _draw makes it
    if not fallback:
        values_V, values_S, table = w._moves
        for uu in u:
            k_V = np.searchsorted(values_V, uu, side="right")
            assert np.array_equal(table[k_V, :w.n_entities], ginc._draw(np.full(w.n_entities, uu), w._cdf_V))
            k_S = np.searchsorted(values_S, uu, side="right")
            for c in range(w.n_concepts):
                row = values_V.size + 1 + c * (values_S.size + 1) + k_S
                assert np.array_equal(table[row, :w.n_properties],
                                      ginc._draw(np.full(w.n_properties, uu), w._cdf_S[c]))
