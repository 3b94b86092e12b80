"""The world protocol: a synthetic distribution that knows its own truth.

A world samples pretraining sequences in batches from a ``numpy.random.Generator``,
builds evaluation prompts, and exposes its ground truth (the latent task of each
sequence, exact likelihoods, the Bayes-optimal prediction) without ever needing a model.
Worlds are pure NumPy: this package never imports torch.

Every world is a frozen pydantic model, so its parameters are validated on
construction with one style of error message, can sit directly inside a study's
YAML config, and are saved with the run. Derived state (transition matrices, graphs)
is built from the world's own ``seed`` in ``model_post_init`` and kept in private
attributes, so two worlds with equal parameters are the same world.

Two batch types cover every world:

- :class:`TokenBatch` for worlds over a vocabulary (induction, ICG, graph walks);
- :class:`VectorBatch` for continuous-input worlds (in-context regression).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class TokenBatch:
    """A batch of token sequences.

    Attributes
    ----------
    tokens : ndarray of shape (batch, pos), int64
        Token ids in ``[0, vocab_size)``.
    loss_mask : ndarray of shape (batch, pos), bool, or None
        ``loss_mask[b, t]`` says whether predicting ``tokens[b, t]`` from the prefix
        ``tokens[b, :t]`` counts in the loss. Column 0 is never predicted. None means
        every position from 1 on counts.
    info : dict of str to ndarray
        Per-sequence ground truth, each array with leading axis ``batch``
        (e.g. ``"topic"``, ``"segment_start"``). Worlds document their keys.
    """

    tokens: np.ndarray
    loss_mask: np.ndarray | None = None
    info: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.tokens.shape[0]


@dataclass(frozen=True)
class VectorBatch:
    """A batch of in-context regression prompts.

    Attributes
    ----------
    xs : ndarray of shape (batch, points, dim), float32
        Inputs of each prompt.
    ys : ndarray of shape (batch, points), float32
        Targets; the model predicts ``ys[:, i]`` from ``xs[:, :i+1]`` and ``ys[:, :i]``.
    info : dict of str to ndarray
        Per-prompt ground truth (e.g. ``"basis"``, ``"w"``), leading axis ``batch``.
    """

    xs: np.ndarray
    ys: np.ndarray
    info: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.xs.shape[0]


class World(BaseModel):
    """Base class of every world.

    Subclasses declare their parameters as pydantic fields (with ``Field`` constraints),
    set ``name`` (the registry key), and implement :meth:`sample`. Every size has a finite
    cap from :mod:`iclab.limits` (vocabularies at most 4,194,304 tokens, sequences at most
    2^20 tokens, counts of nodes, graphs or topics at most 10^6, seeds below 2^32), and
    floats are finite. They override
    :meth:`prompts` when evaluation prompts differ from pretraining sequences.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: ClassVar[str] = ""

    @property
    def vocab_size(self) -> int:
        """Number of token ids the world emits (0 for continuous-input worlds)."""
        raise NotImplementedError(f"{type(self).__name__} does not define vocab_size")

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch | VectorBatch:
        """Draw ``n`` pretraining sequences."""
        raise NotImplementedError(f"{type(self).__name__} does not define sample()")

    def prompts(self, rng: np.random.Generator, n: int) -> TokenBatch | VectorBatch:
        """Draw ``n`` evaluation prompts with their truth in ``info``."""
        return self.sample(rng, n)


class DerivedState:
    """Mixin for a world that keeps derived arrays in private attributes (tables built once from
    its parameters): equality and hashing by the parameters alone, since the arrays follow from
    them and comparing them would compare arrays. Only for worlds whose fields are all hashable."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.model_dump().items())))
