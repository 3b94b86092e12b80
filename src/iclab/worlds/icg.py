"""The in-context generation (ICG) world: documents from a hierarchical latent variable model.

A writer picks a mode α, then an outline β_1..β_N (one topic per paragraph), then
writes each paragraph from its topic::

    p(α, β_{1:N}, x_{1:N}) = p(α) p(β_{1:N} | α) Π_i p(x_i | β_i)

and the document is ``<bos> x_1 <sep> x_2 <sep> ... x_N <eos>``. A topic is a tuple
t = (s_1, ..., s_M) of M sub-topics (compositional topics); a paragraph of L content
tokens is M segments of L/M tokens, segment j written by sub-topic s_j's sparse random
Markov chain over all 320 content tokens. Topics split into repeated (R), non-repeated
(C) and unseen (U) sets: only R topics are repeated in training, C topics occur but never
twice in a row, U topics never occur. The ICTR probe asks whether a model trained here
continues a k-shot prompt of one topic with that same topic, for topics from R, C and U.

Jiang et al., "On the In-context Generation of Language Models", EMNLP 2024; spec
``icg.md``, "The world". The paper's generator is not public; the choices this file
fixes are stated in :class:`ICGWorld`'s docstring. The exact oracle (posterior over
modes and topics, Bayes-optimal next topic) is in :mod:`iclab.worlds.icg_oracle`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, PrivateAttr

from iclab.errors import UnknownNameError
from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ
from iclab.worlds import icg_oracle
from iclab.worlds.base import DerivedState, TokenBatch, World

PAD, BOS, SEP, EOS = 0, 1, 2, 3
N_SPECIAL = 4
N_CONTENT = 320
START = N_CONTENT  # row index of a chain's initial distribution, after the 320 token rows
N_ROWS = N_CONTENT + 1
MODES = ("repetition", "narrative", "independent")
TOPIC_SETS = ("R", "C", "U")
# K per arity M so that the number of topics K**M is about equal across M (spec icg.md)
DEFAULT_SUBTOPICS = {1: 256, 2: 16, 3: 6, 4: 4}
MAX_TOPICS = 4096  # the oracle holds dense (topic, topic) matrices
_GATHER_BUDGET = 1 << 21  # elements per chunk of the likelihood gather


class ICGWorld(DerivedState, World):
    r"""Documents of paragraphs written from compositional topics, with repetition mode.

    Definition (spec ``icg.md``; Jiang et al., EMNLP 2024)::

        p(α, β_{1:N}, x_{1:N}) = p(α) p(β_{1:N} | α) Π_i p(x_i | β_i)
        p(x | t) = Π_{j=1}^{M} q_{j, s_j}(x[(j-1)L/M : jL/M])          t = (s_1, ..., s_M)
        q_{j,v}(y_1..y_m) = π_{j,v}(y_1) Π_{i>1} P_{j,v}(y_i | y_{i-1})
        P_{j,v}(· | y) = softmax(ℓ_{j,v,y} / γ) over the 320 content tokens,
        ℓ_{j,v,y,c} = max(z, -margin) with z ~ N(0, 1) if c is one of the `successors`
                      random successors of y, else -margin.

    Choices this implementation fixes (the paper's generator is not public):

    - Each (slot j, value v) has its own chain q_{j,v}: the same value index in two
      slots is two different sub-topics, so the M * K chains are all distinct.
    - Every segment starts afresh from its chain's initial distribution π_{j,v}, which is
      built like one more row (a few likely first tokens), so p(x | t) factorises over
      segments exactly.
    - Row shape: ``successors`` tokens get logit z ~ N(0, 1) (clipped at -margin), all
      others logit -margin, and γ is a softmax temperature. γ → 0: the row is the single
      best successor (deterministic); γ grows: the row flattens, first among the
      successors, then toward uniform over all 320 tokens, so topics get harder to tell
      apart. Every row has full support: any content paragraph has finite log p(x | t)
      under every topic, so attribution of a model's generation never divides by zero.
      At the defaults (γ = 0.5, margin = 4, 4 successors) the floor mass (the uniform
      part of a row) is 2% on average and a row's entropy about 0.9 nats; at γ = 0.75,
      21% and 2.4 nats; at γ = 1, 52% and 4.1 nats (uniform: 5.8 nats).
    - Topic sets: U is ``round(unseen_fraction * n_topics)`` tuples drawn uniformly from
      all tuples except K "cover" tuples (s_j = π_j(v) for v < K, random permutations
      π_j), which keeps every sub-topic value of every slot in a seen topic. The seen
      topics are shuffled once and R is the first ``round(r_repeat * n_seen)`` of them,
      so R grows by inclusion as ``r_repeat`` grows (same seed).
    - Modes (index: name, prior): 0 repetition, ``p_rep``: t ~ Uniform(R), β_i = t for
      all i. 1 narrative, ``(1 - p_rep) * narrative_share``: β_1 ~ Uniform(R ∪ C), then a
      fixed random Markov chain over R ∪ C in which each topic moves to
      ``min(narrative_successors, |R ∪ C| - 1)`` other topics with Dirichlet(1) weights
      (zero diagonal). 2 independent, ``(1 - p_rep) * (1 - narrative_share)``:
      β_1 ~ Uniform(R ∪ C), β_{i+1} ~ Uniform(R ∪ C minus {β_i}).
    - Derived state comes from independent streams of ``SeedSequence(seed)``: chains,
      U, the R/C split and the narrative chain, in that order. So changing γ or margin
      keeps the successors and z; changing ``r_repeat`` keeps the chains and U.

    Parameters
    ----------
    arity : int, default 3
        M, sub-topics per topic (1 to 4).
    n_subtopics : int or None, default None
        K, values per slot; None takes ``DEFAULT_SUBTOPICS[arity]``
        ({1: 256, 2: 16, 3: 6, 4: 4}: 256, 256, 216, 256 topics).
    paragraph_len : int, default 24
        L, content tokens per paragraph; must be divisible by ``arity``.
    n_paragraphs : int, default 30
        N, paragraphs per document.
    successors : int, default 4
        Likely successors per row of a sub-topic chain.
    gamma : float, default 0.5
        γ, topic uncertainty: the softmax temperature of the rows.
    margin : float, default 4.0
        Logit of a non-successor below a successor's mean; with γ it sets how much mass
        leaves the successors.
    unseen_fraction : float, default 0.1
        Share of topics held out as U.
    r_repeat : float, default 0.5
        r_R, share of the seen topics that are repeated topics R.
    p_rep : float, default 0.3
        Prior of the repetition mode.
    narrative_share : float, default 0.5
        Share of the remaining prior ``1 - p_rep`` that goes to the narrative mode.
    narrative_successors : int, default 8
        Successor topics per topic in the narrative chain.
    seed : int, default 0
        Seed of the derived random state (chains, topic sets, narrative chain).

    Notes
    -----
    ``sample(rng, n)`` returns tokens of shape (batch, 1 + N (L + 1)) and ``info`` with
    ``"mode"`` (batch,) mode index and ``"topics"`` (batch, N) topic index per paragraph;
    ``loss_mask`` is None. ``prompts(rng, n, topic_set, k)`` returns k-shot prompts
    ``<bos> x_1 <sep> ... x_k <sep>`` of shape (batch, 1 + k (L + 1)) with ``info``
    ``"topic"`` (batch,) and ``"paragraphs"`` (batch, k, L) token ids.
    Topic index i is the tuple ``topic_tuples[i]`` (lexicographic order over slots).

    Oracle: ``log_p_paragraph`` (exact log p(x | t)), ``attribute`` (the ICTR argmax over
    all topics), ``posterior``, ``bayes_next_topic_distribution`` and ``bayes_ictr``
    (the Bayes-optimal predictor of the training distribution, in :mod:`icg_oracle`).
    """

    name: ClassVar[str] = "icg"

    arity: int = Field(3, ge=1, le=4)
    n_subtopics: int | None = Field(None, ge=2, le=MAX_ITEMS)
    paragraph_len: int = Field(24, ge=1, le=MAX_SEQ)
    n_paragraphs: int = Field(30, ge=1, le=MAX_SEQ)
    successors: int = Field(4, ge=1, le=N_CONTENT)
    gamma: float = Field(0.5, gt=0.0)
    margin: float = Field(4.0, gt=0.0)
    unseen_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    r_repeat: float = Field(0.5, ge=0.0, le=1.0)
    p_rep: float = Field(0.3, ge=0.0, le=1.0)
    narrative_share: float = Field(0.5, ge=0.0, le=1.0)
    narrative_successors: int = Field(8, ge=1, le=MAX_ITEMS)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    _tuples: np.ndarray = PrivateAttr()
    _sets: dict = PrivateAttr()
    _logits: np.ndarray = PrivateAttr()
    _succ: np.ndarray = PrivateAttr()
    _noise: np.ndarray = PrivateAttr()
    _extra: np.ndarray = PrivateAttr()
    _cdf: np.ndarray = PrivateAttr()
    _narrative: np.ndarray = PrivateAttr()
    _narr_next: np.ndarray = PrivateAttr()
    _narr_cdf: np.ndarray = PrivateAttr()

    # ------------------------------------------------------------------ construction

    def model_post_init(self, context) -> None:
        # pydantic runs this before "after" validators and wraps a ValueError raised
        # here into a ValidationError, so the checks live here, ahead of the build
        self._check()
        streams = np.random.SeedSequence(self.seed).spawn(4)
        rng_chain, rng_unseen, rng_split, rng_narr = (np.random.default_rng(s) for s in streams)
        self._tuples = topic_tuples(self.arity, self.subtopics_per_slot)
        self._build_chains(rng_chain)
        unseen = _draw_unseen(rng_unseen, self._tuples, self.subtopics_per_slot, self.n_unseen)
        seen = np.setdiff1d(np.arange(self.n_topics), unseen)
        order = rng_split.permutation(seen)
        n_rep = round(self.r_repeat * seen.size)
        self._sets = {"R": np.sort(order[:n_rep]), "C": np.sort(order[n_rep:]), "U": unseen}
        self._build_narrative(rng_narr, seen)

    def _check(self) -> None:
        M, L, K = self.arity, self.paragraph_len, self.subtopics_per_slot
        if L % M:
            raise ValueError(f"paragraph_len={L} must be divisible by arity={M} (segments of L/M tokens)")
        if K ** M > MAX_TOPICS:
            raise ValueError(f"n_subtopics={K} with arity={M} gives {K ** M} topics; at most {MAX_TOPICS}")
        if self.n_unseen > self.n_topics - K:
            hint = " (arity=1 allows only unseen_fraction=0)" if M == 1 else ""
            raise ValueError(f"unseen_fraction={self.unseen_fraction} holds out {self.n_unseen} of "
                             f"{self.n_topics} topics; at most {self.n_topics - K} can be held out with "
                             f"every sub-topic still seen{hint}")
        n_seen = self.n_topics - self.n_unseen
        if self.p_rep > 0 and round(self.r_repeat * n_seen) == 0:
            raise ValueError(f"r_repeat={self.r_repeat} leaves no repeated topic among {n_seen} seen ones "
                             f"while p_rep={self.p_rep} > 0; raise r_repeat or set p_rep=0")
        if self.p_rep < 1 and n_seen < 2:
            raise ValueError(f"p_rep={self.p_rep} < 1 needs at least 2 seen topics to avoid repeats; "
                             f"got {n_seen}")

    def _build_chains(self, rng: np.random.Generator) -> None:
        C, S = self.arity * self.subtopics_per_slot, self.successors
        succ = _random_subsets(rng, C * N_ROWS, N_CONTENT, S).reshape(C, N_ROWS, S)
        z = rng.standard_normal((C, N_ROWS, S))
        self._succ = succ  # (chain, row, successor) content index 0..319
        self._logits = np.maximum(z, -self.margin)  # clipped so a successor is never below the floor
        self._noise, self._extra = _row_mixture(self._logits, self.gamma, self.margin)
        # sampling boundaries: outcome 0 = uniform "floor" draw, outcome s+1 = successor s
        parts = np.concatenate([N_CONTENT * self._noise[..., None], self._extra], axis=-1)
        self._cdf = np.cumsum(parts, axis=-1)[..., :S].reshape(C * N_ROWS, S)

    def _build_narrative(self, rng: np.random.Generator, seen: np.ndarray) -> None:
        n_seen = seen.size
        S = min(self.narrative_successors, n_seen - 1)
        T = np.zeros((self.n_topics, self.n_topics))
        if S < 1:  # only possible when p_rep == 1: the narrative mode is never used
            self._narrative = T
            self._narr_next, self._narr_cdf = np.zeros((n_seen, 0), np.int64), np.zeros((n_seen, 0))
            return
        others = _random_subsets(rng, n_seen, n_seen - 1, S)  # (seen, S) among the n_seen - 1 others
        nxt = others + (others >= np.arange(n_seen)[:, None])  # skip self: zero diagonal
        g = rng.standard_exponential((n_seen, S))
        w = g / g.sum(axis=1, keepdims=True)  # Dirichlet(1, ..., 1)
        T[seen[:, None], seen[nxt]] = w
        self._narrative = T
        self._narr_next = nxt  # (seen, S) indices into `seen`
        self._narr_cdf = np.cumsum(w, axis=1)[:, :-1]

    # ------------------------------------------------------------------ derived sizes and sets

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + N_CONTENT

    @property
    def subtopics_per_slot(self) -> int:
        """K, sub-topic values per slot (``n_subtopics`` or the default for ``arity``)."""
        return self.n_subtopics if self.n_subtopics is not None else DEFAULT_SUBTOPICS[self.arity]

    @property
    def n_topics(self) -> int:
        """Number of topics, K ** M."""
        return self.subtopics_per_slot ** self.arity

    @property
    def n_unseen(self) -> int:
        """Size of U, ``round(unseen_fraction * n_topics)``."""
        return round(self.unseen_fraction * self.n_topics)

    @property
    def topic_tuples(self) -> np.ndarray:
        """Array of shape (n_topics, M): sub-topic value of each slot for each topic index."""
        return self._tuples.copy()

    def topic_set(self, name: str) -> np.ndarray:
        """Sorted topic indices of set ``name``: "R" (repeated), "C" (non-repeated) or "U" (unseen)."""
        if name not in self._sets:
            raise UnknownNameError("topic set", name, list(TOPIC_SETS))
        return self._sets[name].copy()

    @property
    def mode_prior(self) -> np.ndarray:
        """Array of shape (3,): p(α) for the modes ``MODES`` = (repetition, narrative, independent)."""
        rest = 1.0 - self.p_rep
        return np.array([self.p_rep, rest * self.narrative_share, rest * (1.0 - self.narrative_share)])

    @property
    def narrative_matrix(self) -> np.ndarray:
        """Array of shape (n_topics, n_topics): p(β_{i+1} = u | β_i = t) of the narrative mode.

        Rows and columns of U topics are zero; the diagonal is zero.
        """
        return self._narrative.copy()

    def chain_logits(self, slot: int, value: int) -> np.ndarray:
        """Array of shape (321, 320): logits ℓ of sub-topic ``value`` in ``slot``.

        Row y < 320 gives the next content token after content token y; row 320 is the
        initial distribution. ``softmax(ℓ / gamma, axis=-1)`` is the chain.
        """
        c = self._chain(slot, value)
        dense = np.full((N_ROWS, N_CONTENT), -self.margin)
        np.put_along_axis(dense, self._succ[c], self._logits[c], axis=1)
        return dense

    def transition_matrix(self, slot: int, value: int) -> np.ndarray:
        """Array of shape (321, 320): the rows ``softmax(chain_logits / gamma)``, each summing to 1."""
        c = self._chain(slot, value)
        dense = np.repeat(self._noise[c][:, None], N_CONTENT, axis=1)
        np.put_along_axis(dense, self._succ[c], self._noise[c][:, None] + self._extra[c], axis=1)
        return dense

    def _chain(self, slot: int, value: int) -> int:
        K = self.subtopics_per_slot
        if not (0 <= slot < self.arity and 0 <= value < K):
            raise ValueError(f"slot must be in [0, {self.arity}) and value in [0, {K}); got {slot}, {value}")
        return slot * K + value

    # ------------------------------------------------------------------ sampling

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """Draw ``n`` documents; see the class docstring for the layout and ``info``."""
        modes = _draw_categorical(rng, self.mode_prior, n)  # (batch,)
        topics = self._draw_outlines(rng, modes)  # (batch, N)
        paragraphs = self.sample_paragraphs(rng, topics)  # (batch, N, L)
        return TokenBatch(_layout(paragraphs, last=EOS), None, {"mode": modes, "topics": topics})

    def prompts(self, rng: np.random.Generator, n: int, topic_set: str = "R", k: int = 5) -> TokenBatch:
        """``n`` k-shot prompts ``<bos> x_1 <sep> ... x_k <sep>``, x_i ~ p(x | t), t ~ Uniform(topic_set).

        Returns tokens of shape (batch, 1 + k (L + 1)); ``info["topic"]`` (batch,) and
        ``info["paragraphs"]`` (batch, k, L) token ids.
        """
        if k < 1:
            raise ValueError(f"k (shots) must be >= 1; got {k}")
        pool = self.topic_set(topic_set)
        if pool.size == 0:
            raise ValueError(f"topic set {topic_set!r} is empty for this world (r_repeat={self.r_repeat}, "
                             f"unseen_fraction={self.unseen_fraction})")
        topic = pool[rng.integers(0, pool.size, size=n)]  # (batch,)
        paragraphs = self.sample_paragraphs(rng, np.repeat(topic[:, None], k, axis=1))  # (batch, k, L)
        return TokenBatch(_layout(paragraphs, last=SEP), None, {"topic": topic, "paragraphs": paragraphs})

    def sample_paragraphs(self, rng: np.random.Generator, topics: np.ndarray) -> np.ndarray:
        """Paragraphs x ~ p(x | t): int64 token ids in [4, 324) of shape (*topics.shape, L).

        One loop over the L/M positions of a segment; each step draws every segment of
        every paragraph at once by inverse CDF over the row's mixture (uniform floor plus
        ``successors`` spikes), with a single uniform number per token.
        """
        topics = np.asarray(topics, dtype=np.int64)
        M, Ls = self.arity, self.paragraph_len // self.arity
        tuples = self._tuples[topics.reshape(-1)]  # (par, M)
        chains = np.arange(M) * self.subtopics_per_slot + tuples
        out = np.empty((chains.shape[0], M, Ls), dtype=np.int64)  # (par, M, Ls)
        state = np.full(chains.shape, START)
        succ = self._succ.reshape(-1, self.successors)
        for p in range(Ls):
            rows = chains * N_ROWS + state  # (par, M)
            state = _draw_from_rows(rng.random(rows.shape), self._cdf[rows], succ[rows])
            out[:, :, p] = state
        return (out + N_SPECIAL).reshape(*topics.shape, self.paragraph_len)

    def _draw_outlines(self, rng: np.random.Generator, modes: np.ndarray) -> np.ndarray:
        n, N = modes.size, self.n_paragraphs
        out = np.empty((n, N), dtype=np.int64)  # (batch, N)
        rep = modes == 0
        R = self._sets["R"]
        if rep.any():
            out[rep] = R[rng.integers(0, R.size, size=rep.sum())][:, None]
        other = ~rep
        if other.any():
            seen = np.union1d(R, self._sets["C"])
            out[other] = seen[self._walk_seen(rng, modes[other] == 1, seen.size)]
        return out

    def _walk_seen(self, rng: np.random.Generator, narrative: np.ndarray, n_seen: int) -> np.ndarray:
        """Outlines (rows, N) over seen-topic indices: narrative rows follow the chain, others are uniform."""
        rows, N = narrative.size, self.n_paragraphs
        walk = np.empty((rows, N), dtype=np.int64)
        walk[:, 0] = rng.integers(0, n_seen, size=rows)
        for i in range(1, N):
            prev, u = walk[:, i - 1], rng.random(rows)
            other = np.minimum((u * (n_seen - 1)).astype(np.int64), n_seen - 2)
            independent = other + (other >= prev)  # uniform over seen minus prev
            if self._narr_next.shape[1]:
                pick = (u[:, None] >= self._narr_cdf[prev]).sum(axis=1)
                walk[:, i] = np.where(narrative, self._narr_next[prev, pick], independent)
            else:
                walk[:, i] = independent
        return walk

    # ------------------------------------------------------------------ oracle

    def log_p_paragraph(self, paragraphs: np.ndarray, topics: np.ndarray | None = None) -> np.ndarray:
        """log p(x | t) = Σ_j log q_{j, t_j}(segment j of x), exactly.

        Parameters
        ----------
        paragraphs : int array of shape (..., L)
            Content token ids in [4, 324).
        topics : int array of shape (...,) or None
            None: score every paragraph against every topic. Otherwise one topic per
            paragraph (paired).

        Returns
        -------
        ndarray of shape (..., n_topics) if ``topics`` is None, else (...,), float64.
        """
        x = self._content(paragraphs)  # (par, L) content index 0..319
        lead = np.shape(paragraphs)[:-1]
        M, K, Ls = self.arity, self.subtopics_per_slot, self.paragraph_len // self.arity
        seg = x.reshape(-1, M, Ls)  # (par, M, Ls)
        prev = np.concatenate([np.full((seg.shape[0], M, 1), START), seg[..., :-1]], axis=-1)
        if topics is not None:
            tuples = self._tuples[np.asarray(topics, np.int64).reshape(-1)]  # (par, M)
            chains = np.arange(M) * K + tuples
            return self._log_probs(seg, chains[..., None] * N_ROWS + prev).sum(axis=(1, 2)).reshape(lead)
        total = np.zeros((seg.shape[0], self.n_topics))
        for j in range(M):
            rows = (j * K + np.arange(K))[:, None, None] * N_ROWS + prev[None, :, j]  # (K, par, Ls)
            nxt = np.broadcast_to(seg[None, :, j], rows.shape)
            slot = self._log_probs(nxt, rows).sum(axis=-1)  # (K, par)
            total += slot.T[:, self._tuples[:, j]]  # (par, n_topics)
        return total.reshape(*lead, self.n_topics)

    def _log_probs(self, nxt: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """log P(nxt | row) elementwise for flat row ids (chain * 321 + previous state)."""
        flat_rows, flat_next = rows.reshape(-1), nxt.reshape(-1)
        out = np.empty(flat_rows.size)
        step = max(1, _GATHER_BUDGET // self.successors)
        succ = self._succ.reshape(-1, self.successors)
        extra = self._extra.reshape(-1, self.successors)
        noise = self._noise.reshape(-1)
        for a in range(0, flat_rows.size, step):  # chunks bound the (chunk, successors) temporaries
            r, y = flat_rows[a:a + step], flat_next[a:a + step]
            hit = succ[r] == y[:, None]  # (chunk, S)
            out[a:a + step] = np.log(noise[r] + (hit * extra[r]).sum(axis=1))
        return out.reshape(rows.shape)

    def attribute(self, paragraphs: np.ndarray) -> np.ndarray:
        """argmax_t log p(x | t) over ALL topics (R ∪ C ∪ U): the ICTR attribution.

        ``paragraphs`` (..., L) content token ids → int64 topic indices (...,).
        Ties go to the lowest index.
        """
        return self.log_p_paragraph(paragraphs).argmax(axis=-1)

    def is_malformed(self, paragraphs: np.ndarray) -> np.ndarray:
        """Bool array (...,): the paragraph (..., L) holds a special or out-of-range token."""
        p = np.asarray(paragraphs)
        return ((p < N_SPECIAL) | (p >= N_SPECIAL + N_CONTENT)).any(axis=-1)

    def posterior(self, paragraphs: np.ndarray) -> np.ndarray:
        """p(α, β_k = t | x_1..x_k) under the training prior (batch, 3, n_topics).

        ``paragraphs`` (batch, k, L). See :func:`iclab.worlds.icg_oracle.posterior`.
        """
        return icg_oracle.posterior(self, paragraphs)

    def bayes_next_topic_distribution(self, paragraphs: np.ndarray) -> np.ndarray:
        """p(β_{k+1} = t | x_1..x_k) under the training prior (batch, n_topics).

        See :func:`iclab.worlds.icg_oracle.next_topic_distribution`.
        """
        return icg_oracle.next_topic_distribution(self, paragraphs)

    def bayes_ictr(self, paragraphs: np.ndarray, topics: np.ndarray) -> np.ndarray:
        """p(β_{k+1} = topic | x_1..x_k) (batch,): the Bayes-optimal ICTR reference.

        See :func:`iclab.worlds.icg_oracle.bayes_ictr`.
        """
        return icg_oracle.bayes_ictr(self, paragraphs, topics)

    def _content(self, paragraphs: np.ndarray) -> np.ndarray:
        p = np.asarray(paragraphs)
        if p.ndim < 1 or p.shape[-1] != self.paragraph_len:
            raise ValueError(f"paragraphs must have shape (..., {self.paragraph_len}); got {p.shape}")
        if self.is_malformed(p).any():
            raise ValueError("paragraphs hold special or out-of-range tokens; content ids are in "
                             f"[{N_SPECIAL}, {N_SPECIAL + N_CONTENT}): drop malformed ones first "
                             "(is_malformed)")
        return p.reshape(-1, self.paragraph_len).astype(np.int64) - N_SPECIAL


def topic_tuples(arity: int, k: int) -> np.ndarray:
    """All K ** M topics as an int64 array (n_topics, M), lexicographic.

    Topic index = Σ_j s_j K^(M-1-j).
    """
    grids = np.indices((k,) * arity).reshape(arity, -1)  # (M, n_topics)
    return grids.T.astype(np.int64)


def _row_mixture(logits: np.ndarray, gamma: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """softmax over 320 tokens of logits (successors) and -margin (the rest), as floor + spikes.

    ``logits`` (..., S) → per-token floor b/Z (...,) and spike mass (e^{ℓ/γ} - b)/Z (..., S),
    with b = e^{-margin/γ} and Z = Σ_succ e^{ℓ/γ} + (320 - S) b, shifted by the row max
    so that small γ cannot overflow.
    """
    S = logits.shape[-1]
    top = logits.max(axis=-1, keepdims=True)
    e = np.exp((logits - top) / gamma)  # (..., S)
    b = np.exp((-margin - top) / gamma)  # (..., 1)
    Z = e.sum(axis=-1, keepdims=True) + (N_CONTENT - S) * b
    return (b / Z)[..., 0], (e - b) / Z


def _random_subsets(rng: np.random.Generator, rows: int, n: int, k: int) -> np.ndarray:
    """``rows`` independent uniform k-subsets of range(n) as (rows, k), by Floyd's algorithm.

    O(rows k^2) instead of a (rows, n) permutation, which matters for M = 1 (256 chains).
    """
    out = np.empty((rows, k), dtype=np.int64)
    for i, top in enumerate(range(n - k, n)):
        t = rng.integers(0, top + 1, size=rows)
        taken = (out[:, :i] == t[:, None]).any(axis=1)
        out[:, i] = np.where(taken, top, t)
    return out


def _draw_unseen(rng: np.random.Generator, tuples: np.ndarray, k: int, n_unseen: int) -> np.ndarray:
    """U: n_unseen topics drawn outside K random cover topics that hold every (slot, value)."""
    M = tuples.shape[1]
    cover = np.stack([rng.permutation(k) for _ in range(M)], axis=1)  # (K, M): value v of each slot once
    cover_idx = cover @ (k ** np.arange(M - 1, -1, -1))
    pool = np.setdiff1d(np.arange(tuples.shape[0]), cover_idx)
    return np.sort(rng.choice(pool, size=n_unseen, replace=False))


def _draw_from_rows(u: np.ndarray, cdf: np.ndarray, succ: np.ndarray) -> np.ndarray:
    """One token per row by inverse CDF over (floor, spike_1, ..., spike_S).

    ``u`` (...,) uniform numbers, ``cdf`` (..., S) the boundaries (cdf[..., 0] is the
    floor mass 320 b/Z), ``succ`` (..., S) the successors → content index (...,) int64.
    """
    outcome = (u[..., None] >= cdf).sum(axis=-1)  # 0: floor, s + 1: successor s
    spike = np.take_along_axis(succ, np.maximum(outcome - 1, 0)[..., None], axis=-1)[..., 0]
    floor = outcome == 0
    # given u < floor mass, u / floor mass is uniform on [0, 1): reuse it to pick the token
    uniform = u / np.where(floor, cdf[..., 0], 1.0) * N_CONTENT
    return np.where(floor, np.minimum(uniform.astype(np.int64), N_CONTENT - 1), spike)


def _draw_categorical(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """n draws from a categorical ``probs`` (m,) by inverse CDF → int64 (n,)."""
    idx = np.searchsorted(np.cumsum(probs), rng.random(n), side="right")
    return np.minimum(idx, probs.size - 1).astype(np.int64)


def _layout(paragraphs: np.ndarray, last: int) -> np.ndarray:
    """``<bos> x_1 <sep> ... x_n <last>``: (batch, n, L) → (batch, 1 + n (L + 1)) int64."""
    B, n, L = paragraphs.shape
    body = np.full((B, n, L + 1), SEP, dtype=np.int64)  # (batch, n, L + 1)
    body[:, :, :L] = paragraphs
    body[:, -1, L] = last
    return np.concatenate([np.full((B, 1), BOS, dtype=np.int64), body.reshape(B, n * (L + 1))], axis=1)
