"""A world whose pretraining gives labels a meaning: a fixed map from inputs to label tokens,
sometimes remapped in context.

Each input token x has a fixed class c(x) ∈ {0, …, C-1} (balanced, drawn once from the
world's ``seed``). A sequence is K pairs ``x_1 y_1 x_2 y_2 … x_K y_K`` with the x_i uniform
over the pretraining inputs and one label map m per sequence, y_i = m(c(x_i)):

    m(c) = S_c            with probability 1 - p_remap - p_unrelated   (the labels' meaning)
    m(c) = S_{π(c)}       with probability p_remap                     (π a uniform permutation)
    m(c) = U_{π(c)}       with probability p_unrelated                 (unrelated label tokens)

and then, with probability ``label_noise``, each y_i independently is replaced by a uniformly
random label of the same kind (S or U). So the semantic labels S carry a prior (the
pretraining meaning of "positive"), and a model
that reads the map from the context can also follow a remapping or unrelated labels. This
is the synthetic counterpart of Wei et al., "Larger language models do in-context learning
differently" (2023) and Min et al. (2022): flipped labels (S_{c+1 mod C}) and semantically
unrelated labels (U_c) given in context test whether the model follows the prior or the
context (spec ``mechanisms.md``, label-semantics, "a model trained here"). ``p_remap`` and
``p_unrelated`` set how often pretraining rewards following the context.

Tokens: pretraining inputs ``0 … n_inputs-1``; held-out inputs ``n_inputs … n_inputs +
n_ood_inputs - 1`` (never in pretraining: the out-of-distribution inputs); S_c =
``label_token(c)``; U_c = ``unrelated_token(c)``.

Parameters
----------
n_inputs : int, default 64
n_classes : int, default 2
n_ood_inputs : int, default 16
pairs : int, default 16
    K, pairs per pretraining sequence (``2K`` tokens).
p_remap, p_unrelated : float, default 0.1, 0.1
label_noise : float, default 0.2
seed : int, default 0
    Seed of the class of each input.

``sample(rng, n)`` gives tokens (n, 2K), a loss mask true at the labels, and info
``"mapping"`` (n, C) (the label token of each class) and ``"kind"`` (n,) (0 prior, 1
remapped, 2 unrelated).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from iclab.limits import MAX_ITEMS, MAX_SEED, MAX_SEQ
from iclab.worlds.base import TokenBatch, World

PRIOR, REMAPPED, UNRELATED = 0, 1, 2


class LabelMapWorld(World):
    """See the module docstring."""

    name: ClassVar[str] = "label-map"

    n_inputs: int = Field(64, ge=2, le=MAX_ITEMS)
    n_classes: int = Field(2, ge=2, le=1000)
    n_ood_inputs: int = Field(16, ge=0, le=MAX_ITEMS)
    pairs: int = Field(16, ge=1, le=MAX_SEQ // 2)
    p_remap: float = Field(0.1, ge=0, le=1)
    p_unrelated: float = Field(0.1, ge=0, le=1)
    label_noise: float = Field(0.2, ge=0, le=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _check(self):
        if self.p_remap + self.p_unrelated > 1:
            raise ValueError(f"p_remap + p_unrelated = {self.p_remap + self.p_unrelated:g} must be <= 1")
        if self.n_inputs < self.n_classes:
            raise ValueError(f"n_inputs ({self.n_inputs}) must be >= n_classes ({self.n_classes})")
        return self

    @property
    def vocab_size(self) -> int:
        return self.n_inputs + self.n_ood_inputs + 2 * self.n_classes

    def label_token(self, c) -> np.ndarray:
        """S_c, the semantic label token of class ``c`` (array or int)."""
        return self.n_inputs + self.n_ood_inputs + np.asarray(c)

    def unrelated_token(self, c) -> np.ndarray:
        """U_c, the unrelated label token of class ``c``."""
        return self.n_inputs + self.n_ood_inputs + self.n_classes + np.asarray(c)

    def classes(self) -> np.ndarray:
        """c(x) of every input token, pretraining then held out, (n_inputs + n_ood_inputs,)."""
        rng = np.random.default_rng([self.seed, 7])
        n = self.n_inputs + self.n_ood_inputs
        return rng.permutation(np.arange(n) % self.n_classes)

    def mappings(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The label map of ``n`` sequences: (label token of each class (n, C), kind (n,))."""
        C = self.n_classes
        u = rng.random(n)
        kind = np.where(u < self.p_remap, REMAPPED, np.where(u < self.p_remap + self.p_unrelated, UNRELATED, PRIOR))
        perm = np.argsort(rng.random((n, C)), axis=1)  # (n, C), a uniform permutation per row
        identity = np.broadcast_to(np.arange(C), (n, C))
        mapped = np.where((kind == PRIOR)[:, None], identity, perm)
        tokens = np.where((kind == UNRELATED)[:, None], self.unrelated_token(mapped), self.label_token(mapped))
        return tokens.astype(np.int64), kind.astype(np.int64)

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        mapping, kind = self.mappings(rng, n)
        xs = rng.integers(0, self.n_inputs, size=(n, self.pairs))  # (n, K)
        ys = np.take_along_axis(mapping, self.classes()[xs], axis=1)  # (n, K)
        noisy = rng.random((n, self.pairs)) < self.label_noise
        first = np.where(kind == UNRELATED, self.unrelated_token(0), self.label_token(0))[:, None]  # (n, 1)
        ys = np.where(noisy, first + rng.integers(0, self.n_classes, size=(n, self.pairs)), ys)
        tokens = np.stack([xs, ys], axis=2).reshape(n, 2 * self.pairs).astype(np.int64)  # (n, 2K)
        mask = np.zeros_like(tokens, dtype=bool)
        mask[:, 1::2] = True
        return TokenBatch(tokens, mask, {"mapping": mapping, "kind": kind})

    def bayes_follows_flipped(self, k: int) -> bool | None:
        """Whether the Bayes-optimal predictor of this world answers with the flipped label after k
        demonstrations that all show the flipped map (two classes only; None otherwise): it does when
        P(swap) (1 - ε/2)^k > P(identity) (ε/2)^k, with ε = label_noise, P(swap) = p_remap / 2 and
        P(identity) = 1 - p_remap - p_unrelated + p_remap / 2 (a remapping is a uniform permutation,
        the identity half the time)."""
        if self.n_classes != 2:
            return None
        swap = self.p_remap / 2
        identity = 1 - self.p_remap - self.p_unrelated + self.p_remap / 2
        eps = self.label_noise / 2
        return bool(swap * (1 - eps) ** k > identity * eps ** k)
