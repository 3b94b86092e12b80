"""The GINC world: a mixture of HMMs ("concepts") over entity × property hidden states.

A concept θ is a hidden Markov model whose hidden state is a pair h = (e, p) of an
entity e and a property p. Entities and properties move by two independent chains, and
the state emits a token from a memorised table::

    p(θ) = Uniform(pretraining concepts)
    p(h_1 | θ) = π_θ(h_1)
    p(h_{t+1} = (e', p') | h_t = (e, p), θ) = V[e, e'] S_θ[p, p']
    p(o_t | h_t = (e, p)) = (1 - ε) 1[o_t = W[e, p]] + ε / (n_symbols - 1) 1[o_t ≠ 0]   (p ≠ 0)
    p(o_t | h_t = (e, 0)) = 1[o_t = 0]                                                 (the delimiter)

A pretraining document is a run of one concept's HMM, so it is sentences of that concept
separated by delimiters (property 0 emits the delimiter token 0, whatever the entity).
An in-context prompt has k examples and a test input, all from one concept θ and one
start property s_0 ~ Uniform{1, ..., n_properties - 1}::

    x_i = o_{i,1} ... o_{i,l},  h_{i,1} = (e_i, s_0),  e_i ~ Uniform(entities),  h_{i,t+1} ~ T_θ(h_{i,t})
    prompt = x_1 / x_2 / ... / x_k / o_{k+1,1} ... o_{k+1,l-1}
    answers = argmax_y p(o_{k+1,l} = y | o_{k+1,1:l-1}, θ, s_0)   (a set when there are ties)

so the answer is the last token of the test example as the true concept predicts it, and
the exact Bayes-optimal in-context predictor (:mod:`iclab.worlds.ginc_oracle`) infers θ
and s_0 from the examples.

Xie, Raghunathan, Liang and Ma, "An Explanation of In-context Learning as Implicit
Bayesian Inference", ICLR 2022 (arXiv 2111.02080), Sec. 4; the GINC generator
``p-lambda/incontext-learning`` (``generate_data.py``); spec ``mechanisms.md``,
bayesian-icl.

Conventions kept from the GINC generator (iclab's own vectorised NumPy, no HMM library):

- State index ``e * n_properties + p``; the transition matrix is the product of an
  entity chain V, shared by all concepts, and a property chain S_θ per concept.
- Both chains are mixtures of random permutation matrices, n of them for an n × n chain,
  with weights softmax((u - 1/2) / transition_temp), u ~ U(0, 1)^n; the entity chain is
  then mixed with the identity, V = (1 - c) V_perm + c I (``entity_stickiness`` c = 0.9),
  so entities change slowly. π_θ = softmax((u - 1/2) / start_temp) over the states.
- The emission table W is (n_entities, n_properties) token ids: column 0 is the
  delimiter 0, the others are uniform over the n_symbols - 1 content tokens.
- Half the concepts (the first ``n_pretrain_concepts``) make the pretraining documents;
  the others are unseen in pretraining (out-of-distribution prompts).
- Prompt examples start at property s_0, shared by the prompt, with a uniform entity, and
  follow the concept's chains for l - 1 steps; the answer is the true concept's argmax
  (the ``ID_sample`` prompts of the generator).

Where iclab differs from the generator, and why:

- Documents are streamed, not a fixed file: each training sequence is a fresh run of
  ``doc_len`` tokens of one pretraining concept from π_θ (GINC: 1,000 documents of 10,240
  tokens, cut into 1,024-token blocks that can span two documents).
- Emissions can be noisy (``emission_noise`` ε > 0; GINC's are deterministic).
- Two knobs, off by default, make the world meet the paper's assumptions on the prompt
  distribution, which GINC's generator does not: ``transition_floor`` (every transition
  possible) and ``delimiter_transitions="shared"`` (delimiter moves independent of the
  concept). With GINC's settings a prompt of many examples mostly has probability 0 under
  every pretraining concept (examples start at a random entity, and S_θ[p, 0] S_θ[0, s_0] is
  often 0: 90% of the prompts at k = 32, l = 3 in the default world), and the Bayes-optimal
  language model of the documents grows *less* accurate with k on prompts.
- Out-of-distribution prompts are examples of unseen concepts, drawn and labelled the way
  in-distribution ones are; the generator's ``OOD_sample`` prompts instead have random
  property sequences. Prompts also come with the delimiters removed or shuffled (format
  shifts), see :meth:`GINCWorld.layout`.
- The answer is the set of the true concept's most likely tokens: a prediction anywhere in
  it is right. Random emission tables repeat tokens, so two hidden states can explain the
  test input equally well and the top two tokens tie exactly (about 4% of the prompts at the
  cpu preset); GINC keeps the lowest id (``np.argmax``), which no predictor can know.
  ``info["answer"]`` is still that lowest id. Every predictor's own argmax ties go to the
  lowest id.

Parameters and shapes: see :class:`GINCWorld`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, PrivateAttr

from iclab.errors import InputError
from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ
from iclab.worlds import ginc_oracle
from iclab.worlds.base import DerivedState, TokenBatch, World

DELIMITER = 0  # token id of the delimiter, emitted by property 0
CONCEPT_SETS = ("pretrain", "unseen", "all")
SEPARATORS = ("delimiter", "none", "shuffled")

ConceptSet = Literal["pretrain", "unseen", "all"]
Separator = Literal["delimiter", "none", "shuffled"]


class GINCWorld(DerivedState, World):
    r"""A mixture of HMMs over (entity, property) states; see the module docstring for the definition.

    Parameters
    ----------
    n_symbols : int, default 50
        Vocabulary size: the delimiter (id 0) and n_symbols - 1 content tokens.
    n_entities : int, default 10
        Entities ("values" in the generator).
    n_properties : int, default 10
        Properties ("slots"), property 0 being the delimiter.
    n_concepts : int, default 10
        HMMs in the family.
    n_pretrain_concepts : int, default 5
        The first this many concepts make the pretraining documents; the rest are unseen.
    transition_temp : float, default 0.1
        Temperature of the permutation-mixture weights of both chains (small: peaked chains).
    start_temp : float, default 10.0
        Temperature of the start distribution π_θ (large: near uniform).
    entity_stickiness : float, default 0.9
        c, weight of the identity in the entity chain ("value_identity_coeff").
    transition_floor : float, default 0.0
        f: both chains become (1 - f) M + f / n, so every transition has probability at
        least f / n (the paper's assumption of transitions bounded below). 0 is GINC.
    delimiter_transitions : {"concept", "shared"}, default "concept"
        "concept" (GINC): the delimiter is one more property of each concept's permutation
        mixture, so moving into and out of it depends on the concept. "shared": a sentence
        ends with probability 1/P from every content property and the next one starts at a
        uniform content property, the same for every concept (the paper's delimiter
        assumption); the concepts differ only among the content properties.
    emission_noise : float, default 0.0
        ε: a content state emits a uniform content token with probability ε.
    doc_len : int, default 1024
        Tokens per pretraining sequence.
    seed : int, default 0
        Seed of the derived state (emission table, chains, start distributions).

    Notes
    -----
    ``sample(rng, n)`` returns tokens (batch, doc_len) with ``info`` ``"concept"`` (batch,),
    ``"entity"`` and ``"property"`` (batch, doc_len), the hidden states. ``prompts(rng, n,
    k, l, concepts, separator)`` returns tokens (batch, pos) with ``info`` ``"concept"``,
    ``"start_property"``, ``"answer"``, ``"sampled_answer"`` (batch,), ``"answer_set"``
    (batch, n_symbols) bool and ``"examples"``
    (batch, k + 1, l): the k examples and the whole test example, whose last token is the
    sampled one (the prompt stops before it). Derived arrays: :attr:`emission_table`
    (n_entities, n_properties), :attr:`entity_chain` (n_entities, n_entities),
    :attr:`property_chains` (n_concepts, n_properties, n_properties), :attr:`start_probs`
    (n_concepts, n_entities, n_properties), :attr:`emission_matrix` (n_symbols,
    n_entities, n_properties).
    """

    name: ClassVar[str] = "ginc"

    n_symbols: int = Field(50, ge=3, le=100_000)
    n_entities: int = Field(10, ge=1, le=MAX_ITEMS)
    n_properties: int = Field(10, ge=2, le=MAX_ITEMS)
    n_concepts: int = Field(10, ge=1, le=MAX_ITEMS)
    n_pretrain_concepts: int = Field(5, ge=1, le=MAX_ITEMS)
    transition_temp: float = Field(0.1, gt=0.0, le=1e6)
    start_temp: float = Field(10.0, gt=0.0, le=1e6)
    entity_stickiness: float = Field(0.9, ge=0.0, le=1.0)
    transition_floor: float = Field(0.0, ge=0.0, le=1.0)
    delimiter_transitions: Literal["concept", "shared"] = "concept"
    emission_noise: float = Field(0.0, ge=0.0, lt=1.0)
    doc_len: int = Field(1024, ge=2, le=MAX_SEQ)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    _table: np.ndarray = PrivateAttr()
    _V: np.ndarray = PrivateAttr()
    _S: np.ndarray = PrivateAttr()
    _pi: np.ndarray = PrivateAttr()
    _B: np.ndarray = PrivateAttr()
    _cdf_V: np.ndarray = PrivateAttr()
    _cdf_S: np.ndarray = PrivateAttr()
    _cdf_pi: np.ndarray = PrivateAttr()
    _moves: tuple[np.ndarray, np.ndarray, np.ndarray] | None = PrivateAttr()

    # ------------------------------------------------------------------ construction

    def model_post_init(self, context) -> None:
        # checks live here: pydantic wraps a ValueError raised here into a ValidationError
        if self.n_pretrain_concepts > self.n_concepts:
            raise ValueError(f"n_pretrain_concepts={self.n_pretrain_concepts} must be <= "
                             f"n_concepts={self.n_concepts}")
        E, P = self.n_entities, self.n_properties
        table_ss, entity_ss, concept_ss = np.random.SeedSequence(self.seed).spawn(3)
        rng_table = np.random.default_rng(table_ss)
        table = rng_table.integers(1, self.n_symbols, size=(E, P))
        table[:, 0] = DELIMITER
        self._table = table
        f = self.transition_floor
        V_perm = _permutation_mixture(np.random.default_rng(entity_ss), E, self.transition_temp)
        V = (1.0 - self.entity_stickiness) * V_perm + self.entity_stickiness * np.eye(E)
        self._V = (1.0 - f) * V + f / E
        # one stream per concept: adding concepts keeps the first ones
        S, pi = [], []
        for ss in concept_ss.spawn(self.n_concepts):
            rng = np.random.default_rng(ss)
            S.append((1.0 - f) * self._property_chain(rng) + f / P)
            pi.append(_softmax((rng.random(E * P) - 0.5) / self.start_temp).reshape(E, P))
        self._S, self._pi = np.stack(S), np.stack(pi)
        self._B = self._emissions()
        self._cdf_V = _cdf(self._V)
        self._cdf_S = _cdf(self._S)
        self._cdf_pi = _cdf(self._pi.reshape(self.n_concepts, E * P))
        self._moves = _move_tables(self._cdf_V, self._cdf_S)

    def _property_chain(self, rng: np.random.Generator) -> np.ndarray:
        """One concept's property chain before the floor, (P, P).

        "concept": a permutation mixture over all P properties, the delimiter included (GINC).
        "shared": a permutation mixture over the P - 1 content properties; every content
        property ends the sentence (moves to property 0) with probability 1/P (GINC's
        average) and the next sentence starts at a uniform content property, whatever the
        concept.
        """
        P = self.n_properties
        if self.delimiter_transitions == "concept":
            return _permutation_mixture(rng, P, self.transition_temp)
        S = np.zeros((P, P))
        S[0, 1:] = 1.0 / (P - 1)
        S[1:, 0] = 1.0 / P
        S[1:, 1:] = (1.0 - 1.0 / P) * _permutation_mixture(rng, P - 1, self.transition_temp)
        return S

    def _emissions(self) -> np.ndarray:
        """p(o | e, p) as (n_symbols, n_entities, n_properties)."""
        E, P, eps = self.n_entities, self.n_properties, self.emission_noise
        B = np.zeros((self.n_symbols, E, P))
        e, p = np.meshgrid(np.arange(E), np.arange(1, P), indexing="ij")
        B[1:, :, 1:] = eps / (self.n_symbols - 1)
        B[self._table[e, p], e, p] += 1.0 - eps
        B[DELIMITER, :, 0] = 1.0
        return B

    # ------------------------------------------------------------------ derived state

    @property
    def vocab_size(self) -> int:
        return self.n_symbols

    @property
    def emission_table(self) -> np.ndarray:
        """W, (n_entities, n_properties) int64: the token of each state; column 0 is the delimiter."""
        return self._table.copy()

    @property
    def entity_chain(self) -> np.ndarray:
        """V, (n_entities, n_entities): p(e' | e), shared by every concept."""
        return self._V.copy()

    @property
    def property_chains(self) -> np.ndarray:
        """S, (n_concepts, n_properties, n_properties): p(p' | p, θ)."""
        return self._S.copy()

    @property
    def start_probs(self) -> np.ndarray:
        """π, (n_concepts, n_entities, n_properties): p(h_1 = (e, p) | θ)."""
        return self._pi.copy()

    @property
    def emission_matrix(self) -> np.ndarray:
        """B, (n_symbols, n_entities, n_properties): p(o | e, p)."""
        return self._B.copy()

    def transition_matrix(self, concept: int) -> np.ndarray:
        """T_θ, (n_states, n_states) over state index e * n_properties + p: V ⊗ S_θ."""
        self._check_concept(concept)
        return np.kron(self._V, self._S[concept])

    def concept_set(self, name: str) -> np.ndarray:
        """Concept indices of ``name``: "pretrain" (seen in pretraining), "unseen" or "all"."""
        if name == "pretrain":
            return np.arange(self.n_pretrain_concepts)
        if name == "unseen":
            return np.arange(self.n_pretrain_concepts, self.n_concepts)
        if name == "all":
            return np.arange(self.n_concepts)
        raise InputError(f"unknown concept set {name!r}; known: {', '.join(CONCEPT_SETS)}")

    def _check_concept(self, concept: int) -> None:
        if not 0 <= concept < self.n_concepts:
            raise InputError(f"concept must be in [0, {self.n_concepts}); got {concept}")

    # ------------------------------------------------------------------ sampling

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """``n`` pretraining documents of ``doc_len`` tokens, one pretraining concept each."""
        P = self.n_properties
        concept = rng.integers(0, self.n_pretrain_concepts, size=n)  # (batch,)
        first = _draw(rng.random(n), self._cdf_pi[concept])  # (batch,) state index
        entity, prop = self._run(rng, concept, first // P, first % P, self.doc_len)  # (batch, doc_len) each
        tokens = self._emit(rng, entity, prop)
        return TokenBatch(tokens, None, {"concept": concept, "entity": entity, "property": prop})

    def sample_examples(self, rng: np.random.Generator, n: int, k: int, l: int,
                        concepts: ConceptSet = "pretrain") -> dict[str, np.ndarray]:
        """The hidden part of ``n`` prompts: k + 1 examples of length l each.

        Returns a dict with ``"concept"``, ``"start_property"`` (n,), ``"examples"``,
        ``"entity"``, ``"property"`` (n, k + 1, l): tokens and hidden states of the k
        examples and of the whole test example, ``"answer_set"`` (n, n_symbols) bool, the
        true concept's most likely next tokens after the test example's first l - 1 tokens
        (more than one where they tie), and ``"answer"`` (n,), the lowest of them.
        """
        if k < 0 or l < 2:
            raise InputError(f"prompts need k >= 0 examples of length l >= 2; got k={k}, l={l}")
        pool = self.concept_set(concepts)
        if pool.size == 0:
            raise InputError(f"concept set {concepts!r} is empty (n_concepts={self.n_concepts}, "
                             f"n_pretrain_concepts={self.n_pretrain_concepts})")
        concept = pool[rng.integers(0, pool.size, size=n)]  # (n,)
        start = rng.integers(1, self.n_properties, size=n)  # (n,) s_0
        m = k + 1
        e0 = rng.integers(0, self.n_entities, size=(n, m))  # (n, m) a fresh entity per example
        entity, prop = self._run(rng, np.repeat(concept, m), e0.reshape(-1), np.repeat(start, m), l)  # (n m, l)
        tokens = self._emit(rng, entity, prop).reshape(n, m, l)
        answers = ginc_oracle.answer_set(self.next_token_given(tokens[:, -1, :-1], concept, start))
        return {"concept": concept, "start_property": start, "examples": tokens,
                "entity": entity.reshape(n, m, l), "property": prop.reshape(n, m, l),
                "answer_set": answers, "answer": answers.argmax(axis=1)}

    def prompts(self, rng: np.random.Generator, n: int, k: int = 4, l: int = 5, concepts: ConceptSet = "pretrain",
                separator: Separator = "delimiter") -> TokenBatch:
        """``n`` prompts of k examples of length l and a test input; see the module docstring.

        Returns tokens (n, pos) with pos = k (l + 1) + l - 1 (k l + l - 1 without
        separators) and ``info`` ``"concept"``, ``"start_property"``, ``"answer"``,
        ``"sampled_answer"`` (n,), ``"answer_set"`` (n, n_symbols), ``"examples"`` (n, k + 1,
        l). The model's prediction after the last token is right if it is in ``"answer_set"``.
        """
        ex = self.sample_examples(rng, n, k, l, concepts)
        tokens = self.layout(ex["examples"], separator, rng)
        info = {"concept": ex["concept"], "start_property": ex["start_property"], "answer": ex["answer"],
                "answer_set": ex["answer_set"],
                "sampled_answer": ex["examples"][:, -1, -1], "examples": ex["examples"]}
        return TokenBatch(tokens, None, info)

    def layout(self, examples: np.ndarray, separator: Separator = "delimiter",
               rng: np.random.Generator | None = None) -> np.ndarray:
        """The prompt tokens of examples (n, k + 1, l): the k examples, then the test input.

        ``separator``: "delimiter" puts the delimiter after each of the k examples (the
        in-distribution format); "none" writes them back to back; "shuffled" keeps the k
        delimiters but puts them at random places among the k examples' tokens (``rng``
        needed), so they no longer mark where an example ends. The test input (the last
        example without its last token) always comes last. Returns (n, pos) int64.
        """
        ex = np.asarray(examples, dtype=np.int64)
        if ex.ndim != 3 or ex.shape[1] < 1 or ex.shape[2] < 2:
            raise InputError(f"examples must have shape (n, k + 1, l >= 2); got {ex.shape}")
        n, m, l = ex.shape
        k = m - 1
        test = ex[:, -1, :-1]  # (n, l - 1)
        if separator == "none" or k == 0:
            return np.concatenate([ex[:, :k].reshape(n, k * l), test], axis=1)
        if separator == "delimiter":
            body = np.full((n, k, l + 1), DELIMITER, dtype=np.int64)  # (n, k, l + 1)
            body[:, :, :l] = ex[:, :k]
            return np.concatenate([body.reshape(n, k * (l + 1)), test], axis=1)
        if separator == "shuffled":
            if rng is None:
                raise InputError("separator='shuffled' needs an rng")
            width = k * (l + 1)
            # k delimiter slots out of k (l + 1), uniformly: the k smallest of iid keys
            keys = rng.random((n, width))
            delim = np.zeros((n, width), dtype=bool)
            np.put_along_axis(delim, np.argsort(keys, axis=1)[:, :k], True, axis=1)
            body = np.full((n, width), DELIMITER, dtype=np.int64)
            body[~delim] = ex[:, :k].reshape(-1)  # row-major: each row's example tokens in order
            return np.concatenate([body, test], axis=1)
        raise InputError(f"unknown separator {separator!r}; known: {', '.join(SEPARATORS)}")

    def _run(self, rng: np.random.Generator, concept: np.ndarray, e0: np.ndarray, p0: np.ndarray,
             length: int) -> tuple[np.ndarray, np.ndarray]:
        """Hidden paths (rows, length) of entities and properties from (e0, p0), one concept per row.

        Step t draws u = rng.random((2, rows)) and moves each row by inverse CDF (:func:`_draw`),
        the entity by u[0] on V and the property by u[1] on S_θ, as a plain loop over t would
        (the tests keep that loop as the reference). Here the uniforms of all steps come from
        one ``rng.random((length - 1, 2, rows))``, the same numbers in the same order, leaving
        the generator in the same state; each step's move from every possible state is read
        from a table of u's rank among the CDF values (:func:`_move_table`, exact: the same
        comparisons); and the two chains, independent given the uniforms, walk together in
        about 2 sqrt(length) NumPy steps (:func:`_walk`) instead of length. One thread,
        sample() median of 50: 11.7 -> 1.3 ms at 8x1024 (paper), 2.1 -> 0.6 ms at 32x160 (cpu).
        """
        rows = concept.shape[0]
        E, P, K = self.n_entities, self.n_properties, max(self.n_entities, self.n_properties)
        entity = np.empty((rows, length), dtype=np.int64)
        prop = np.empty((rows, length), dtype=np.int64)
        entity[:, 0], prop[:, 0] = e0, p0
        if length < 2 or rows == 0:
            return entity, prop
        T = length - 1
        u = rng.random((T, 2, rows))  # (step, chain, row): the stream of T calls rng.random((2, rows))
        b = max(1, int(np.ceil(np.sqrt(T))))  # block length of the walk
        nb = -(-T // b)
        # steps in walk order (step in block, block, chain, row); padding steps (u = 0) come after
        # the last real step, so where they lead is never read
        ub = np.zeros((nb * b, 2, rows))
        ub[:T] = u
        ub = ub.reshape(nb, b, 2, rows).transpose(1, 0, 2, 3)
        if self._moves is not None:  # every row's move from every state, one gather from the tables
            values_V, values_S, table = self._moves
            row = np.empty((b, nb, 2, rows), dtype=np.intp)  # the row of table of each step, chain and row
            row[:, :, 0] = np.searchsorted(values_V, ub[:, :, 0], side="right")  # how many values <= u
            row[:, :, 1] = np.searchsorted(values_S, ub[:, :, 1], side="right")
            row[:, :, 1] += values_V.size + 1 + concept * (values_S.size + 1)
            nxt = table[row.reshape(b, nb, 2 * rows)]  # (b, nb, 2 rows, K)
        else:  # _draw's comparisons, column by column
            nxt = np.zeros((b, nb, 2, rows, K), dtype=np.intp)  # padding columns 0, never read
            for j in range(E):
                nxt[:, :, 0, :, :E] += ub[:, :, 0, :, None] >= self._cdf_V[:, j]
            cdf_S = self._cdf_S[concept]  # (rows, P, P)
            for j in range(P):
                nxt[:, :, 1, :, :P] += ub[:, :, 1, :, None] >= cdf_S[:, :, j]
            nxt = nxt.reshape(b, nb, 2 * rows, K)
        path = _walk(nxt, np.concatenate([e0, p0]))  # (nb b, 2 rows)
        entity[:, 1:] = path[:T, :rows].T
        prop[:, 1:] = path[:T, rows:].T
        return entity, prop

    def _emit(self, rng: np.random.Generator, entity: np.ndarray, prop: np.ndarray) -> np.ndarray:
        """Tokens (same shape) of hidden states: the table, or with probability ε a uniform content token."""
        tokens = self._table[entity, prop]
        if self.emission_noise > 0:
            noisy = (rng.random(tokens.shape) < self.emission_noise) & (prop != 0)
            tokens = np.where(noisy, rng.integers(1, self.n_symbols, size=tokens.shape), tokens)
        return tokens.astype(np.int64)

    # ------------------------------------------------------------------ oracle

    def log_likelihood(self, tokens: np.ndarray, concepts: np.ndarray | None = None) -> np.ndarray:
        """log p(x | θ, s_0) of example prefixes x (..., L), each starting at property s_0.

        Returns (..., n_concepts', n_properties - 1) for the concepts given (all by
        default) and s_0 = 1, ..., n_properties - 1. See :mod:`iclab.worlds.ginc_oracle`.
        """
        return ginc_oracle.log_likelihood(self, tokens, concepts)

    def next_token_given(self, tokens: np.ndarray, concept: np.ndarray, start: np.ndarray) -> np.ndarray:
        """p(o_{L+1} | o_{1:L}, θ, s_0), (n, n_symbols), for prefixes (n, L) with their concept and s_0 (n,)."""
        return ginc_oracle.next_token_given(self, tokens, concept, start)

    def bayes_next_token(self, examples: np.ndarray, concepts: ConceptSet = "pretrain") -> np.ndarray:
        """The Bayes-optimal p(answer | prompt), (n, n_symbols), for examples (n, k + 1, l).

        The prior is uniform over the concept set ``concepts`` and over s_0; see
        :func:`iclab.worlds.ginc_oracle.bayes_next_token`.
        """
        return ginc_oracle.bayes_next_token(self, examples, self.concept_set(concepts))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def _permutation_mixture(rng: np.random.Generator, n: int, temp: float) -> np.ndarray:
    """A random (n, n) stochastic matrix: n random permutation matrices mixed with weights
    softmax((u - 1/2) / temp), u ~ U(0, 1)^n."""
    weights = _softmax((rng.random(n) - 0.5) / temp)  # (n,)
    perms = np.stack([rng.permutation(n) for _ in range(n)])  # (n perms, n): row i goes to perms[j, i]
    M = np.zeros((n, n))
    np.add.at(M, (np.tile(np.arange(n), n), perms.reshape(-1)), np.repeat(weights, n))
    return M


def _cdf(probs: np.ndarray) -> np.ndarray:
    """Cumulative sums over the last axis, ending at exactly 1, so that u ~ U[0, 1) never draws
    an outcome of probability zero."""
    c = np.cumsum(probs, axis=-1)
    c /= c[..., -1:]
    c[..., -1] = 1.0
    return c


def _draw(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """One index per row by inverse CDF: u (rows,), cdf (rows, m) → int64 (rows,)."""
    return (u[:, None] >= cdf).sum(axis=1).astype(np.int64)


MAX_MOVE_TABLE = 1 << 22  # entries of a _move_table; bigger chains fall back to comparing column by column


def _move_table(cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, table) giving :func:`_draw` from every row of the CDFs cdf (..., m, m) at once.

    ``values`` (n,) are the distinct CDF values, sorted; ``table`` (..., n + 1, m) int holds, at
    index k, the draw from each row x for a u with exactly k values <= u: count_j(cdf[..., x, j]
    <= values[k - 1]), which equals count_j(cdf[..., x, j] <= u) = ``_draw(u, cdf[..., x])``
    (ties included) since every CDF value <= u is <= values[k - 1] <= u.
    """
    values = np.unique(cdf)
    m = cdf.shape[-1]
    table = np.zeros(cdf.shape[:-2] + (values.size + 1, m), dtype=np.intp)
    for j in range(m):
        table[..., 1:, :] += cdf[..., None, :, j] <= values[:, None]  # (..., n, m)
    return values, table


def _move_tables(cdf_V: np.ndarray, cdf_S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The entity chain's and every property chain's :func:`_move_table` in one table.

    Returns (values_V, values_S, table) with table (n_V + 1 + n_concepts (n_S + 1), K) int, K =
    max(E, P): first V's table, then each concept's S table (columns past E or P are 0, never
    read), so that a step of either chain is one row of it. None when it would hold more than
    MAX_MOVE_TABLE entries (chains of hundreds of states); :meth:`GINCWorld._run` then compares.
    """
    values_V, values_S = np.unique(cdf_V), np.unique(cdf_S)
    E, (C, P, _) = cdf_V.shape[0], cdf_S.shape
    K = max(E, P)
    n_rows = values_V.size + 1 + C * (values_S.size + 1)
    if n_rows * K > MAX_MOVE_TABLE:
        return None
    table = np.zeros((n_rows, K), dtype=np.intp)
    table[:values_V.size + 1, :E] = _move_table(cdf_V)[1]
    table[values_V.size + 1:, :P] = _move_table(cdf_S)[1].reshape(-1, P)
    return values_V, values_S, table


def _walk(nxt: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """States (b nb, rows) of the walks s_{t+1} = move_t[r, s_t] from s_0 = s0 (rows,), where
    nxt (b, nb, rows, K) int holds move_t for t = B b + j at nxt[j, B].

    The sequential walk, in blocks of b steps: within every block at once, where the block's
    first j + 1 moves lead from every possible state (b NumPy steps); then the state at each
    block's start, block after block (nb NumPy steps); then every position in one gather.
    """
    b, nb, rows, K = nxt.shape
    off = (np.arange(nb * rows) * K).reshape(nb, rows, 1)  # flat offset of each (block, row)
    comp = np.empty_like(nxt)  # comp[j, B, r, x]: state after moves 0..j of block B from state x
    comp[0] = nxt[0]
    for j in range(1, b):
        comp[j] = nxt[j].reshape(-1)[off + comp[j - 1]]
    last = comp[b - 1].reshape(-1)
    start = np.empty((nb, rows), dtype=np.intp)  # state before each block
    start[0] = s0
    ar = np.arange(rows) * K
    for B in range(1, nb):
        start[B] = last[(B - 1) * rows * K + ar + start[B - 1]]
    states = np.take_along_axis(comp, np.broadcast_to(start[None, :, :, None], (b, nb, rows, 1)), axis=3)
    return states[..., 0].transpose(1, 0, 2).reshape(nb * b, rows)
