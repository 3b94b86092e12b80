"""Exact Bayes-optimal in-context prediction on the GINC world, by the forward algorithm.

Given a prompt of k examples x_1..x_k and a test input x = o_{1:l-1} of
:class:`iclab.worlds.ginc.GINCWorld`, the examples are independent given the concept θ and
the shared start property s_0, so::

    log p(x_{1:k}, x | θ, s_0) = Σ_i log p(x_i | θ, s_0) + log p(x | θ, s_0)
    p(θ, s_0 | prompt) ∝ p(θ) p(s_0) p(x_{1:k}, x | θ, s_0),     p(s_0) = Uniform{1..P-1}
    p(y | prompt) = Σ_{θ, s_0} p(θ, s_0 | prompt) p(o_l = y | x, θ, s_0)

where p(x | θ, s_0) is the HMM likelihood from h_1 ~ Uniform(entities) × δ(s_0), computed by
the forward algorithm, and p(o_l | x, θ, s_0) pushes the last forward message through one
transition and the emissions. The prior p(θ) is uniform over a concept set: the pretraining
concepts (the Bayes-optimal predictor of a learner that saw only pretraining documents), or
all concepts (one that knows the unseen ones too). The world's answer is
argmax_y p(o_l = y | x, θ*, s_0*) for the true θ*, s_0* (a set where tokens tie): the limit of
this predictor as the posterior concentrates.

This predictor knows the prompt format (independent examples, shared s_0); it is not the
predictive of the pretraining distribution applied to the prompt as one long sequence,
which would give probability 0 to most example boundaries (the chains have zero entries).

Numerics: the forward pass is scaled (each message normalised, log p(x) = Σ_t log c_t, the
log of the normalisers), so it neither underflows within an example nor across many
examples: those are combined in log space and normalised by log-sum-exp. A prompt of
probability 0 under every concept of the prior (only an unseen concept's prompt, judged
with the pretraining prior, with deterministic emissions) has no posterior: its
predictive is NaN, and its prediction (:func:`predict`) is -1, which is never the answer.

Xie et al., "An Explanation of In-context Learning as Implicit Bayesian Inference", ICLR
2022 (Sec. 2, 4); spec ``mechanisms.md``, bayesian-icl. Vectorised over prompts and
hypotheses (θ, s_0); chunks bound the (rows, hypotheses, entities, properties) messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import logsumexp

from iclab.errors import InputError

if TYPE_CHECKING:
    from iclab.worlds.ginc import GINCWorld

_BUDGET = 1 << 22  # elements of a chunk of forward messages


def start_messages(world: GINCWorld) -> np.ndarray:
    """p(h_1 = (e, p) | s_0) as (P - 1, E P) over state index e P + p: uniform entity, property s_0 = 1..P-1."""
    E, P = world.n_entities, world.n_properties
    start = np.zeros((P - 1, E, P))
    start[np.arange(P - 1), :, np.arange(1, P)] = 1.0 / E
    return start.reshape(P - 1, E * P)


def forward(world: GINCWorld, tokens: np.ndarray, concepts: np.ndarray, start: np.ndarray,
            keep_messages: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Scaled forward pass of token rows under every (concept, start distribution) pair.

    Parameters
    ----------
    world : GINCWorld
    tokens : int array of shape (m, L), L >= 1
    concepts : int array of shape (C,)
    start : array of shape (S, E P) or (C, S, E P)
        Start distributions p(h_1) over state index e P + p, shared by the concepts or
        one set per concept.
    keep_messages : bool, default True
        False returns no messages (they take C S m E P floats: too many for long lists of
        examples, whose likelihoods alone are needed).

    Returns
    -------
    loglik : (C, S, m)
        log p(tokens | θ, start); -inf where impossible.
    message : (C, S, m, E P) or None
        p(h_L | tokens, θ, start), zero where impossible.
    """
    x = np.asarray(tokens, dtype=np.int64)
    m, L = x.shape
    C, S, N = concepts.size, start.shape[-2], start.shape[-1]
    start = np.broadcast_to(start, (C, S, N))
    T = np.stack([world.transition_matrix(c) for c in concepts])  # (C, N, N)
    B = world._B.reshape(world.n_symbols, N)  # (V, N): p(o | state)
    loglik = np.empty((C, S, m))
    message = np.empty((C, S, m, N)) if keep_messages else None
    step = max(1, _BUDGET // (C * S * N))
    for a in range(0, m, step):
        rows = x[a:a + step]  # (r, L)
        r = rows.shape[0]
        alpha = start[:, :, None, :] * B[rows[:, 0]]  # (C, S, r, N)
        ll = np.zeros((C, S, r))
        for t in range(L):
            if t:
                alpha = (alpha.reshape(C, S * r, N) @ T).reshape(C, S, r, N) * B[rows[:, t]]
            c = alpha.sum(axis=-1)  # (C, S, r)
            with np.errstate(divide="ignore"):
                ll += np.log(c)
            alpha /= np.where(c > 0, c, 1.0)[..., None]
        loglik[:, :, a:a + r] = ll
        if keep_messages:
            message[:, :, a:a + r] = alpha
    return loglik, message


def predictive_from(world: GINCWorld, message: np.ndarray, concepts: np.ndarray) -> np.ndarray:
    """p(o_{L+1} | o_{1:L}, θ, start) from the last forward message (C, S, m, E P) → (C, S, m, V)."""
    C, S, m, N = message.shape
    T = np.stack([world.transition_matrix(c) for c in concepts])  # (C, N, N)
    nxt = message.reshape(C, S * m, N) @ T  # (C, S m, N): p(h_{L+1})
    return (nxt @ world._B.reshape(world.n_symbols, N).T).reshape(C, S, m, world.n_symbols)


def _concepts(world: GINCWorld, concepts: Iterable[int] | None) -> np.ndarray:
    c = np.arange(world.n_concepts) if concepts is None else np.asarray(list(concepts), dtype=np.int64)
    if c.ndim != 1 or c.size == 0 or c.min() < 0 or c.max() >= world.n_concepts:
        raise InputError(f"concepts must be a non-empty list of indices in [0, {world.n_concepts}); got {c}")
    return c


def log_likelihood(world: GINCWorld, tokens: np.ndarray, concepts: Iterable[int] | None = None) -> np.ndarray:
    """log p(x | θ, s_0) for token rows (..., L) → (..., C, P - 1), θ over ``concepts`` (all by default)."""
    x = np.asarray(tokens, dtype=np.int64)
    c = _concepts(world, concepts)
    rows = x.reshape(-1, x.shape[-1])  # (rows, L)
    ll, _ = forward(world, rows, c, start_messages(world), keep_messages=False)  # (C, P-1, rows)
    return np.moveaxis(ll, -1, 0).reshape(*x.shape[:-1], c.size, world.n_properties - 1)


def next_token_given(world: GINCWorld, tokens: np.ndarray, concept: np.ndarray, start: np.ndarray) -> np.ndarray:
    """p(o_{L+1} | o_{1:L}, θ, s_0) for rows (n, L) with their own θ and s_0 (n,) → (n, V).

    A row impossible under its (θ, s_0) gets zeros.
    """
    x = np.asarray(tokens, dtype=np.int64)
    concept, start = np.asarray(concept, np.int64), np.asarray(start, np.int64)
    out = np.zeros((x.shape[0], world.n_symbols))
    for c in np.unique(concept):  # one concept at a time; every s_0, then each row's own
        rows = np.nonzero(concept == c)[0]
        cs = np.array([c])
        _, message = forward(world, x[rows], cs, start_messages(world))  # (1, P-1, r, N)
        pred = predictive_from(world, message, cs)[0]  # (P-1, r, V)
        out[rows] = pred[start[rows] - 1, np.arange(rows.size)]
    return out


def answer_set(probs: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The most likely tokens of each row, (n, V) bool: within ``tol`` of the row's maximum,
    so that ties, which floating point can split by a rounding error, are kept together."""
    return probs >= probs.max(axis=-1, keepdims=True) - tol


def bayes_by_shots(world: GINCWorld, examples: np.ndarray, shots: Iterable[int],
                   concepts: Iterable[int] | None = None) -> dict[int, np.ndarray]:
    """Bayes-optimal p(answer | prompt) for nested prompts, one forward pass for all k.

    Parameters
    ----------
    examples : int array of shape (n, k_max + 1, l)
        k_max examples and the test example; the k-shot prompt is the first k examples
        and the test input (the last example without its last token).
    shots : iterable of int
        The k values, each in [0, k_max].
    concepts : iterable of int, optional
        Support of the uniform prior over concepts; all concepts by default.

    Returns
    -------
    dict of k to array (n, V): the predictive, rows summing to 1 (NaN where the prompt has
    probability 0 under every hypothesis).
    """
    ex = np.asarray(examples, dtype=np.int64)
    if ex.ndim != 3 or ex.shape[1] < 1 or ex.shape[2] < 2:
        raise InputError(f"examples must have shape (n, k + 1, l >= 2); got {ex.shape}")
    n, m, l = ex.shape
    shots = sorted(set(int(k) for k in shots))
    if shots and (shots[0] < 0 or shots[-1] > m - 1):
        raise InputError(f"shots must be in [0, {m - 1}] for {m - 1} examples; got {shots}")
    c = _concepts(world, concepts)
    start = start_messages(world)
    G = c.size * start.shape[0]  # hypotheses (θ, s_0), θ-major
    ll_test, message = forward(world, ex[:, -1, :-1], c, start)  # (C, S, n), (C, S, n, N)
    pred = predictive_from(world, message, c).reshape(G, n, world.n_symbols)  # (G, n, V)
    ll_test = ll_test.reshape(G, n).T  # (n, G)
    if m > 1:
        ll_ex, _ = forward(world, ex[:, :-1].reshape(n * (m - 1), l), c, start, keep_messages=False)  # (C, S, n (m-1))
        ll_ex = ll_ex.reshape(G, n, m - 1).transpose(1, 2, 0)  # (n, m - 1, G)
        cum = np.concatenate([np.zeros((n, 1, G)), np.cumsum(ll_ex, axis=1)], axis=1)
    else:
        cum = np.zeros((n, 1, G))  # (n, k_max + 1, G): Σ_{i <= k} log p(x_i | hypothesis)
    out = {}
    for k in shots:
        logw = cum[:, k] + ll_test  # (n, G); the prior is uniform over hypotheses
        norm = logsumexp(logw, axis=1, keepdims=True)  # (n, 1)
        with np.errstate(invalid="ignore"):
            w = np.exp(logw - norm)  # NaN rows where norm = -inf
        out[k] = np.einsum("ng,gnv->nv", w, pred)
    return out


def pretraining_predictive(world: GINCWorld, tokens: np.ndarray, concepts: Iterable[int] | None = None
                           ) -> np.ndarray:
    """The next-token predictive of the pretraining distribution, as if the prompt began a document.

    p(o_{T+1} | o_{1:T}) = Σ_θ p(θ | o_{1:T}) p(o_{T+1} | o_{1:T}, θ), each concept's HMM
    started from π_θ, the prior uniform over ``concepts`` (the pretraining concepts by
    default): the Bayes-optimal language model of the pretraining documents, which a model
    trained on them approximates. ``tokens`` (n, T) → (n, V); NaN rows where the tokens
    have probability 0 under every concept.
    """
    x = np.asarray(tokens, dtype=np.int64)
    c = np.arange(world.n_pretrain_concepts) if concepts is None else _concepts(world, concepts)
    N = world.n_entities * world.n_properties
    ll, message = forward(world, x, c, world._pi[c].reshape(c.size, 1, N))  # (C, 1, n), (C, 1, n, N)
    pred = predictive_from(world, message, c)[:, 0]  # (C, n, V)
    norm = logsumexp(ll[:, 0], axis=0, keepdims=True)  # (1, n)
    with np.errstate(invalid="ignore"):
        w = np.exp(ll[:, 0] - norm)  # (C, n), NaN columns where norm = -inf
    return np.einsum("cn,cnv->nv", w, pred)


def bayes_next_token(world: GINCWorld, examples: np.ndarray, concepts: Iterable[int] | None = None) -> np.ndarray:
    """Bayes-optimal p(answer | prompt), (n, V), for examples (n, k + 1, l); see :func:`bayes_by_shots`."""
    k = np.shape(examples)[1] - 1
    return bayes_by_shots(world, examples, [k], concepts)[k]


def posterior(world: GINCWorld, examples: np.ndarray, concepts: Iterable[int] | None = None) -> np.ndarray:
    """p(θ, s_0 | prompt), (n, C, P - 1), for examples (n, k + 1, l) (the test example's last token unused)."""
    ex = np.asarray(examples, dtype=np.int64)
    n, m, l = ex.shape
    c = _concepts(world, concepts)
    ll = log_likelihood(world, ex[:, -1, :-1], c)  # (n, C, P-1)
    if m > 1:
        ll = ll + log_likelihood(world, ex[:, :-1], c).sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.exp(ll - logsumexp(ll, axis=(1, 2), keepdims=True))


def predict(probs: np.ndarray) -> np.ndarray:
    """argmax over the last axis (ties to the lowest id), -1 for NaN rows (no posterior)."""
    bad = np.isnan(probs).any(axis=-1)
    return np.where(bad, -1, np.nan_to_num(probs, nan=0.0).argmax(axis=-1)).astype(np.int64)
