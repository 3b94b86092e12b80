"""Token worlds for induction heads: random tokens with a repeated segment, and controls.

A :class:`RepeatedTokens` sequence is i.i.d. uniform tokens in which one segment
``s = tokens[a : a+S]`` is written again at ``b >= a + S``::

    r r r [s_0 s_1 ... s_{S-1}] r r ... [s_0 s_1 ... s_{S-1}] r r

Inside the second copy, token ``s_{j+1}`` follows ``s_j`` as it did earlier, so a model
that finds the previous occurrence of the current token and copies its successor
(an induction head; Olsson et al. 2022, "In-context learning and induction heads";
spec ``mechanisms.md``, induction-heads) predicts it; nothing else can, since every
other token is uniform. The gap ``b - a`` varies between sequences, so a head that
attends at a fixed relative offset cannot stand in for an induction head.

:class:`RandomTokens` is the control: the same uniform tokens with no repeat.

Evaluation prompts (``prompts``) are the canonical ones of the literature: ``n``
uniform tokens followed by the same ``n`` tokens again (``seq_len = 2n``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from iclab.limits import MAX_SEQ, MAX_VOCAB
from iclab.worlds.base import TokenBatch, World


class RepeatedTokens(World):
    """Uniform random tokens with one segment repeated later in the sequence.

    Parameters
    ----------
    vocab : int, default 64
        Number of token ids.
    seq_len : int, default 32
        Tokens per sequence.
    min_segment, max_segment : int, default 6 and 16
        Segment length ``S`` is uniform in ``[min_segment, max_segment]``.
    p_repeat : float, default 1.0
        Share of sequences that contain a repeat; the others are plain random tokens.

    ``info`` keys of a batch (each of shape (batch,)): ``first`` = a, ``second`` = b,
    ``length`` = S (all -1 for sequences without a repeat). ``loss_mask`` is None.
    """

    name: ClassVar[str] = "repeated-tokens"

    vocab: int = Field(64, ge=2, le=MAX_VOCAB)
    seq_len: int = Field(32, ge=4, le=MAX_SEQ)
    min_segment: int = Field(6, ge=2, le=MAX_SEQ)
    max_segment: int = Field(16, ge=2, le=MAX_SEQ)
    p_repeat: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_lengths(self):
        if self.min_segment > self.max_segment:
            raise ValueError(f"min_segment ({self.min_segment}) must be <= max_segment ({self.max_segment})")
        if 2 * self.max_segment > self.seq_len:
            raise ValueError(f"2 * max_segment ({2 * self.max_segment}) must be <= seq_len ({self.seq_len})")
        return self

    @property
    def vocab_size(self) -> int:
        return self.vocab

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        T = self.seq_len
        tokens = rng.integers(0, self.vocab, size=(n, T), dtype=np.int64)  # (batch, pos)
        length = rng.integers(self.min_segment, self.max_segment + 1, size=n)
        # a uniform over [0, T - 2S], then b uniform over [a + S, T - S]
        first = np.floor(rng.random(n) * (T - 2 * length + 1)).astype(np.int64)
        second = first + length + np.floor(rng.random(n) * (T - first - 2 * length + 1)).astype(np.int64)
        repeat = rng.random(n) < self.p_repeat
        offs = np.arange(self.max_segment)
        rows = np.nonzero(repeat)[0]
        for L in np.unique(length[rows]):  # vectorised per segment length
            r = rows[length[rows] == L]
            src = first[r, None] + offs[None, :L]  # (n_r, L)
            dst = second[r, None] + offs[None, :L]
            tokens[r[:, None], dst] = tokens[r[:, None], src]
        none = ~repeat
        first[none] = second[none] = length[none] = -1
        return TokenBatch(tokens, None, {"first": first, "second": second, "length": length})

    def prompts(self, rng: np.random.Generator, n: int) -> TokenBatch:
        """``n`` canonical induction prompts ``[r_0..r_{h-1}, r_0..r_{h-1}]`` with ``h = seq_len // 2``."""
        return repeated_prompts(rng, n, self.seq_len // 2, 0, self.vocab)


class RandomTokens(World):
    """Uniform i.i.d. tokens, no structure: the control world.

    Parameters
    ----------
    vocab : int, default 64
    seq_len : int, default 32
    """

    name: ClassVar[str] = "random-tokens"

    vocab: int = Field(64, ge=2, le=MAX_VOCAB)
    seq_len: int = Field(32, ge=2, le=MAX_SEQ)

    @property
    def vocab_size(self) -> int:
        return self.vocab

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        return TokenBatch(rng.integers(0, self.vocab, size=(n, self.seq_len), dtype=np.int64))


def repeated_prompts(rng: np.random.Generator, n: int, half: int, low: int, high: int) -> TokenBatch:
    """``n`` prompts of ``half`` uniform tokens in ``[low, high)`` written twice.

    Returns a batch of shape (n, 2 * half) with ``info["first"] = 0``,
    ``info["second"] = half`` and ``info["length"] = half``. Used for models trained
    here and for pretrained LMs (with ``[low, high)`` a range of ordinary tokens).
    """
    r = rng.integers(low, high, size=(n, half), dtype=np.int64)  # (batch, half)
    tokens = np.concatenate([r, r], axis=1)  # (batch, 2 * half)
    z = np.zeros(n, dtype=np.int64)
    return TokenBatch(tokens, None, {"first": z, "second": z + half, "length": z + half})
