"""Bursty, Zipfian classes: sequences of exemplar–label pairs then a query (Chan et al. 2022, symbolic).

Each class c has a prototype, a string of L feature tokens (distinct across classes), and E
fixed exemplars made from it by replacing each token, independently with probability v (the
within-class variation), by a different feature token. Training classes c = 0 ... N - 1 have a
fixed label token y(c), one per class or, with ``n_labels``, a balanced random map onto fewer
labels; the H holdout classes are never trained. A sequence is P context pairs and a query::

    x_1 y_1  x_2 y_2  ...  x_P y_P  x_q y_q        (x_i: L tokens, y_i: one label token)

and the prediction that matters is y_q after x_q. Classes are drawn from a Zipf law over
the training classes, p(c) ∝ (c + 1)^(-α) (α = 0: uniform). With probability p_bursty a
training sequence is *bursty*: ``ways`` classes (Zipf draws conditioned on being distinct)
appear ``shots`` times each in the context, the query is one of them, and the
other P - shots·ways pairs are i.i.d. Zipf draws; otherwise every class of the sequence,
the query's too, is an i.i.d. Zipf draw (the query class is in the context only by chance).
The context is shuffled; the query stays last. Training labels are always the class's own.

Evaluation sequences (Chan et al.'s eval modes):

- ``fewshot`` on holdout classes (in-context learning): ``ways`` holdout classes,
  ``eval_shots`` times each, with *fresh labels*: each sequence gives its holdout classes
  ``ways`` distinct label tokens drawn uniformly from all labels, so only the context says
  which label goes with which class. Chance is 1 / ways for a model that picks one of the
  context's labels. The remaining context pairs (if eval_shots·ways < P) are training
  classes with their own labels.
- ``no-support`` on training classes (in-weights learning): the query class is a Zipf draw
  and no context pair is of its class (the others are Zipf draws from the remaining
  classes), so only the weights can give its label.
- ``fewshot`` on training classes with fresh labels: in-context learning against the
  class's own label (how much a model follows the context over its weights).

An exemplar is drawn for each pair: a class's pairs within one burst (its shots and the
query) use distinct exemplars, drawn without replacement (cycling if E is smaller than the
burst); other pairs draw an exemplar uniformly.

Chan, Santoro, Lampinen, Wang, Singh, Richemond, McClelland and Hill, "Data Distributional
Properties Drive Emergent In-Context Learning in Transformers", NeurIPS 2022 (arXiv
2205.05055); their generator ``google-deepmind/emergent_in_context_learning``
(``datasets/data_generators.py``, ``SeqGenerator``); spec ``mechanisms.md``, data-properties.

Conventions kept from that generator: P = 8 context pairs and a query; bursty sequences of
3 shots of 2 ways (``bursty_shots``, ``ways``), the rest of the context i.i.d. from the Zipf
law (``p_bursty_zipfian = 1``), non-bursty sequences i.i.d. Zipf (``non_bursty_type =
"zipfian"``), the context shuffled and the query last; evaluation few-shot sequences of 4
shots of 2 ways (``fs_shots``) whose labels are assigned per sequence (``labeling =
"unfixed"``); no-support sequences whose context never holds the query class; classes of
the Zipf law ranked by a fixed ordering; holdout classes disjoint from the trained ones.

Where iclab differs, and why:

- Exemplars are token strings, not Omniglot images through a ResNet: a class is a noisy
  prototype over a small feature vocabulary, so holdout classes are new strings of familiar
  tokens (a model can compare them with its context without having seen them), and the
  within-class variation v is a knob (Omniglot's is fixed by the drawings; the generator's
  ``noise_scale`` adds pixel noise).
- Fresh labels of holdout few-shot sequences are drawn from all labels per sequence; the
  generator uses labels 0 … ways - 1 (the labels of its two rarest classes) in every sequence.
- The bursty classes are distinct (the generator draws them with replacement, so a "2-way"
  burst can be one class six times), and exemplars within a burst are drawn without
  replacement also for the query (the generator draws the query's exemplar separately).
- The loss can count every label of the sequence (``loss_on = "labels"``, the generator's
  ``w_interim_predictions``) or every token (``"all"``, a language model's loss: repeated
  exemplars of a burst then also reward copying), not only the query's label (``"query"``,
  the paper's default).
- Classes can share labels (``n_labels`` < N, as in Reddy 2023's version of this task), so
  that many classes, hard to memorise, need only a small label vocabulary.
- Class c has rank c + 1 in the Zipf law (class 0 the most frequent); the generator ranks a
  random permutation, which is the same law.

Parameters and shapes: see :class:`BurstyClasses`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, PrivateAttr

from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ, MAX_VOCAB
from iclab.worlds.base import TokenBatch, World

ClassSet = Literal["holdout", "trained"]


class BurstyClasses(World):
    """Exemplar–label sequences of Zipfian, bursty classes; see the module docstring for the definition.

    Parameters
    ----------
    n_classes : int, default 1600
        N, training classes (Omniglot: 1,623 classes in all).
    n_labels : int or None, default None
        Label tokens; None: one per training class. Otherwise class c gets label
        ``perm(c) mod n_labels`` for a random permutation (each label about N / n_labels classes).
    n_holdout : int, default 20
        H, classes never trained, for the in-context evaluation; at least ``ways``.
    n_exemplars : int, default 20
        E, fixed exemplars per class (Omniglot's 20 drawings).
    exemplar_len : int, default 4
        L, feature tokens per exemplar.
    n_features : int, default 32
        Feature tokens (the exemplars' alphabet).
    variation : float, default 0.2
        v, probability that an exemplar's token differs from its class prototype.
    context : int, default 8
        P, exemplar–label pairs before the query.
    shots : int, default 3
        Pairs of each bursty class in a bursty context.
    ways : int, default 2
        Classes of a burst (and of an evaluation few-shot sequence).
    eval_shots : int, default 4
        Pairs of each class in an evaluation few-shot context.
    p_bursty : float, default 0.9
        Share of bursty training sequences.
    zipf_exponent : float, default 0.0
        α of the Zipf law over the training classes (0: uniform).
    loss_on : {"query", "labels", "all"}, default "query"
        Which predictions count in the training loss: the query's label, every label, or every
        token from the second on.
    seed : int, default 0
        Seed of the derived state (prototypes and exemplars).

    Notes
    -----
    Tokens: features are ``0 ... n_features - 1``, labels ``n_features ... n_features + labels - 1``
    (``vocab_size = n_features + labels``; :attr:`class_labels` gives each class's token). Every batch has tokens (batch, (P + 1)(L + 1))
    and ``info``: ``"classes"`` and ``"labels"`` (batch, P + 1), the class (holdout classes
    are ``N ... N + H - 1``) and the label token of each pair, the query last;
    ``"query_class"``, ``"query_label"`` (batch,); ``"bursty"`` (batch,) bool (for evaluation
    sequences: whether the query class is in the context). Derived arrays:
    :attr:`prototypes` (N + H, L), :attr:`exemplars` (N + H, E, L), :attr:`class_probs` (N,).
    """

    name: ClassVar[str] = "bursty-classes"

    n_classes: int = Field(1600, ge=2, le=MAX_ITEMS)
    n_labels: int | None = Field(None, ge=2, le=MAX_ITEMS)
    n_holdout: int = Field(20, ge=1, le=MAX_ITEMS)
    n_exemplars: int = Field(20, ge=1, le=10_000)
    exemplar_len: int = Field(4, ge=1, le=1024)
    n_features: int = Field(32, ge=2, le=MAX_VOCAB)
    variation: float = Field(0.2, ge=0.0, le=1.0)
    context: int = Field(8, ge=1, le=MAX_SEQ // 2)
    shots: int = Field(3, ge=1, le=MAX_SEQ)
    ways: int = Field(2, ge=1, le=MAX_ITEMS)
    eval_shots: int = Field(4, ge=1, le=MAX_SEQ)
    p_bursty: float = Field(0.9, ge=0.0, le=1.0)
    zipf_exponent: float = Field(0.0, ge=0.0, le=10.0)
    loss_on: Literal["query", "labels", "all"] = "query"
    seed: int = Field(0, ge=0, le=MAX_SEED)

    _exemplars: np.ndarray = PrivateAttr()
    _prototypes: np.ndarray = PrivateAttr()
    _probs: np.ndarray = PrivateAttr()
    _label: np.ndarray = PrivateAttr()

    def model_post_init(self, context) -> None:
        # checks live here: pydantic wraps a ValueError raised here into a ValidationError
        if self.shots * self.ways > self.context:
            raise ValueError(f"shots * ways = {self.shots} * {self.ways} must be <= context = {self.context}")
        if self.eval_shots * self.ways > self.context:
            raise ValueError(f"eval_shots * ways = {self.eval_shots} * {self.ways} must be <= context = "
                             f"{self.context}")
        if self.ways > self.n_holdout or self.ways > self.n_classes - 1 or self.ways > self.labels:
            raise ValueError(f"ways = {self.ways} must be <= n_holdout = {self.n_holdout}, <= n_labels = "
                             f"{self.labels} and < n_classes = {self.n_classes}")
        if self.labels > self.n_classes:
            raise ValueError(f"n_labels = {self.n_labels} must be <= n_classes = {self.n_classes}")
        n, E, L, F = self.n_classes + self.n_holdout, self.n_exemplars, self.exemplar_len, self.n_features
        if L * np.log2(F) < 62 and F ** L < n:
            raise ValueError(f"n_features ** exemplar_len = {F} ** {L} = {F ** L} strings is fewer than the "
                             f"{n} classes (n_classes + n_holdout); raise either")
        rng = np.random.default_rng([self.seed, 0x0DA7A])
        proto = _distinct_strings(rng, n, L, F)  # (class, L)
        change = rng.random((n, E, L)) < self.variation  # (class, E, L)
        other = (proto[:, None, :] + rng.integers(1, F, size=(n, E, L))) % F  # a different feature
        self._prototypes = proto
        self._exemplars = np.where(change, other, proto[:, None, :])  # (class, E, L)
        w = (np.arange(self.n_classes) + 1.0) ** -self.zipf_exponent
        self._probs = w / w.sum()
        # class -> label: the identity, or a balanced random map onto n_labels labels
        label = np.arange(self.n_classes) if self.n_labels is None else rng.permutation(self.n_classes) % self.labels
        self._label = self.n_features + label

    # ------------------------------------------------------------------ derived state

    @property
    def labels(self) -> int:
        """Label tokens: ``n_labels``, or one per training class."""
        return self.n_classes if self.n_labels is None else self.n_labels

    @property
    def vocab_size(self) -> int:
        return self.n_features + self.labels

    @property
    def seq_len(self) -> int:
        """Tokens of a sequence, (P + 1)(L + 1)."""
        return (self.context + 1) * (self.exemplar_len + 1)

    @property
    def prototypes(self) -> np.ndarray:
        """Class prototypes, (N + H, L) feature tokens."""
        return self._prototypes

    @property
    def exemplars(self) -> np.ndarray:
        """Exemplars of every class, (N + H, E, L) feature tokens."""
        return self._exemplars

    @property
    def class_probs(self) -> np.ndarray:
        """The Zipf law over the training classes, (N,)."""
        return self._probs

    @property
    def class_labels(self) -> np.ndarray:
        """The label token of each training class, (N,)."""
        return self._label

    def label_of(self, classes: np.ndarray) -> np.ndarray:
        """The label token of training classes (any shape)."""
        return self._label[np.asarray(classes)]

    # ------------------------------------------------------------------ sampling

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """``n`` training sequences: bursty with probability p_bursty, otherwise i.i.d. Zipf classes."""
        P, K, W = self.context, self.shots, self.ways
        bursty = rng.random(n) < self.p_bursty
        classes = self._zipf(rng, (n, P + 1))  # (batch, P + 1): the non-bursty sequences as they are
        ex = rng.integers(0, self.n_exemplars, size=(n, P + 1))  # (batch, P + 1)
        b = np.nonzero(bursty)[0]
        if len(b):
            burst = self._zipf_distinct(rng, len(b), W)  # (n_b, W)
            cb, eb = classes[b], ex[b]
            self._add_burst(rng, cb, eb, burst, K)
            classes[b], ex[b] = cb, eb
        labels = self.label_of(classes)
        return self._batch(classes, ex, labels, bursty, self.loss_on)

    def fewshot(self, rng: np.random.Generator, n: int, of: ClassSet = "holdout") -> TokenBatch:
        """``n`` few-shot sequences: ``ways`` classes of ``of``, ``eval_shots`` pairs each, fresh labels.

        The rest of the context (P - eval_shots * ways pairs) is i.i.d. Zipf training classes
        with their own labels. The loss mask marks the query label only.
        """
        P, W, N = self.context, self.ways, self.n_classes
        classes = self._zipf(rng, (n, P + 1))  # (batch, P + 1)
        ex = rng.integers(0, self.n_exemplars, size=(n, P + 1))
        if of == "holdout":
            burst = N + _distinct(rng, n, W, lambda size: rng.integers(0, self.n_holdout, size))  # (batch, W)
        else:
            burst = self._zipf_distinct(rng, n, W)
        slots, way_of_slot, q = self._add_burst(rng, classes, ex, burst, self.eval_shots)
        labels = self.label_of(np.minimum(classes, N - 1))  # the burst's entries are overwritten below
        fresh = self.n_features + _distinct(rng, n, W, lambda size: rng.integers(0, self.labels, size))  # (batch, W)
        rows = np.arange(n)[:, None]
        labels[rows, slots] = fresh[rows, way_of_slot[None, :]]
        labels[:, -1] = fresh[np.arange(n), q]
        return self._batch(classes, ex, labels, np.ones(n, dtype=bool), "query")

    def no_support(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """``n`` sequences whose query (a Zipf draw) has no pair of its class in the context."""
        P = self.context
        classes = self._zipf(rng, (n, P + 1))  # (batch, P + 1); column -1 is the query
        clash = classes[:, :P] == classes[:, -1:]
        while clash.any():  # redraw clashing context classes: Zipf without the query class
            classes[:, :P][clash] = self._zipf(rng, int(clash.sum()))
            clash = classes[:, :P] == classes[:, -1:]
        ex = rng.integers(0, self.n_exemplars, size=(n, P + 1))
        return self._batch(classes, ex, self.label_of(classes), np.zeros(n, dtype=bool), "query")

    def prompts(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """The in-context evaluation: ``n`` few-shot sequences of holdout classes with fresh labels."""
        return self.fewshot(rng, n, "holdout")

    # ------------------------------------------------------------------ pieces

    def _zipf(self, rng: np.random.Generator, shape) -> np.ndarray:
        return rng.choice(self.n_classes, size=shape, p=self._probs)

    def _zipf_distinct(self, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
        """``k`` Zipf draws per row conditioned on being distinct, (n, k)."""
        return _distinct(rng, n, k, lambda size: self._zipf(rng, size))

    def _add_burst(self, rng, classes, ex, burst, shots):
        """Write, in place, ``shots`` pairs of each burst class (n, W) at random context slots of
        ``classes`` and ``ex`` (n, P + 1), and make the query one of them; a class's exemplars
        within the burst are distinct. Returns the slots (n, shots * W), the way of each slot
        (shots * W,) and the query's way (n,)."""
        n, W = burst.shape
        slots = np.argsort(rng.random((n, self.context)), axis=1)[:, :shots * W]  # (n, shots * W) distinct
        way_of_slot = np.tile(np.arange(W), shots)  # slot j holds way j % W, shot j // W
        shot_of_slot = np.repeat(np.arange(shots), W)
        rows = np.arange(n)[:, None]
        order = np.argsort(rng.random((n, W, self.n_exemplars)), axis=2)  # (n, W, E): exemplar permutations
        classes[rows, slots] = burst[:, way_of_slot]
        ex[rows, slots] = order[rows, way_of_slot[None, :], shot_of_slot[None, :] % self.n_exemplars]
        q = rng.integers(0, W, size=n)  # the query's way
        classes[:, -1] = burst[np.arange(n), q]
        ex[:, -1] = order[np.arange(n), q, shots % self.n_exemplars]
        return slots, way_of_slot, q

    def _batch(self, classes, ex, labels, bursty, loss_on) -> TokenBatch:
        n, L = classes.shape[0], self.exemplar_len
        x = self._exemplars[classes, ex]  # (batch, P + 1, L)
        tokens = np.concatenate([x, labels[:, :, None]], axis=2).reshape(n, -1).astype(np.int64)  # (batch, pos)
        mask = np.zeros(tokens.shape, dtype=bool)
        if loss_on == "query":
            mask[:, -1] = True
        elif loss_on == "labels":
            mask[:, L::L + 1] = True
        else:
            mask[:, 1:] = True
        info = {"classes": classes, "labels": labels, "query_class": classes[:, -1].copy(),
                "query_label": labels[:, -1].copy(), "bursty": bursty}
        return TokenBatch(tokens, mask, info)


def _distinct(rng: np.random.Generator, n: int, k: int, draw) -> np.ndarray:
    """(n, k) i.i.d. draws of ``draw(size)`` conditioned on each row being distinct: rows with a
    repeat are drawn again until none is left."""
    out = draw((n, k))
    again = np.nonzero((np.sort(out, axis=1)[:, 1:] == np.sort(out, axis=1)[:, :-1]).any(axis=1))[0]
    while len(again):
        out[again] = draw((len(again), k))
        s = np.sort(out[again], axis=1)
        again = again[(s[:, 1:] == s[:, :-1]).any(axis=1)]
    return out


def _distinct_strings(rng: np.random.Generator, n: int, length: int, base: int) -> np.ndarray:
    """``n`` distinct uniform strings of ``length`` tokens in ``[0, base)``, (n, length)."""
    if length * np.log2(base) >= 62:  # a repeat is astronomically unlikely: plain draws
        return rng.integers(0, base, size=(n, length))
    codes = rng.choice(base ** length, size=n, replace=False)  # (n,) distinct
    digits = base ** np.arange(length - 1, -1, -1)  # (length,)
    return codes[:, None] // digits[None, :] % base  # (n, length)
