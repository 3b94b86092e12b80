"""Per-head attention scores of the induction circuit (Olsson et al. 2022).

On a prompt of ``h`` random tokens written twice, ``[r_0 .. r_{h-1}, r_0 .. r_{h-1}]``,
with ``A[b, head, i, k]`` a head's attention pattern (batch, head, query_pos, key_pos):

- **induction score**: mean over queries ``i`` in the second copy (``h <= i < 2h``) of
  ``A[i, i - h + 1]``, the attention from a token to the token that followed its earlier
  occurrence. 1 for a perfect induction head, about ``1 / i`` for uniform attention.
- **prefix-matching score**: mean over queries ``i`` with at least one such key of the
  total attention on keys ``k`` whose *preceding* token equals the current token,
  ``sum_{k : tokens[k-1] = tokens[i], k <= i} A[i, k]``. It equals the induction score
  when the first copy has no repeated token, and it is defined on any token sequence
  (natural text too), not only on repeated prompts.
- **previous-token score**: mean over ``i >= 1`` of ``A[i, i - 1]``.

Spec: ``mechanisms.md``, induction-heads. Scores are computed for every layer and head in
one forward pass; on an SDPA model the patterns are computed from its queries and keys.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from iclab.models.capture import capture
from iclab.models.hooks import anatomy
from iclab.models.names import act_name
from iclab.probes.base import Probe, as_tokens, batched
from iclab.probes.copying import copying_scores
from iclab.probes.result import ProbeResult
from iclab.rows import Row


def induction_score(pattern: torch.Tensor, half: int) -> torch.Tensor:
    """Induction score per head from patterns (batch, head, 2*half, 2*half) → (head,)."""
    q = torch.arange(half, 2 * half, device=pattern.device)
    return pattern[:, :, q, q - half + 1].mean(dim=(0, 2))  # (batch, head, half) → (head,)


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Previous-token score per head from patterns (batch, head, pos, pos) → (head,)."""
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def prefix_matching_keys(tokens: torch.Tensor) -> torch.Tensor:
    """``M[b, i, k] = 1`` where ``k <= i``, ``k >= 1`` and ``tokens[b, k-1] == tokens[b, i]``,
    (batch, pos, pos)."""
    prev = torch.cat([torch.full_like(tokens[:, :1], -1), tokens[:, :-1]], dim=1)  # (batch, pos)
    match = tokens[:, :, None] == prev[:, None, :]  # (batch, query, key)
    causal = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device).tril()
    return match & causal


def prefix_matching_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Prefix-matching score per head from patterns (batch, head, pos, pos) and tokens
    (batch, pos) → (head,); queries with no prefix-matching key are left out."""
    keys = prefix_matching_keys(tokens).to(pattern.dtype)  # (batch, query, key)
    mass = (pattern * keys[:, None]).sum(-1)  # (batch, head, query)
    has = keys.sum(-1) > 0  # (batch, query)
    return (mass * has[:, None]).sum(dim=(0, 2)) / has.sum().clamp_min(1)


class InductionScores(Probe):
    """Induction, prefix-matching, previous-token and copying scores of every head.

    Parameters
    ----------
    batch_size : int, default 64
        Prompts per forward pass.

    Call with ``prompts``: a TokenBatch (or tensor) of repeated prompts of shape
    (n, 2 * half) (see :func:`iclab.worlds.induction.repeated_prompts`). Returns rows
    ``(probe="induction", metric=<score>, layer, head)`` and arrays of shape (layer, head)
    named after each metric.
    """

    name: ClassVar[str] = "induction"
    batch_size: int = Field(64, ge=1)

    def __call__(self, model, prompts) -> ProbeResult:
        tokens = as_tokens(model, prompts)
        n, T = tokens.shape
        if T % 2:
            raise ValueError(f"induction prompts must be a sequence written twice (even length), got {T}")
        half = T // 2
        a = anatomy(model)
        L, H = a.n_layers, a.n_heads
        sums = {m: torch.zeros(L, H) for m in ("induction_score", "prefix_matching", "previous_token", "copying")}
        names = [act_name("pattern", layer) for layer in range(L)] + [act_name("z", layer) for layer in range(L)]
        for sl in batched(n, self.batch_size):
            cache = capture(model, tokens[sl], names)
            w = (sl.stop - sl.start) / n
            for layer in range(L):
                pat = cache[act_name("pattern", layer)].float()  # (batch, head, pos, pos)
                sums["induction_score"][layer] += w * induction_score(pat, half).cpu()
                sums["prefix_matching"][layer] += w * prefix_matching_score(pat, tokens[sl]).cpu()
                sums["previous_token"][layer] += w * previous_token_score(pat).cpu()
                sums["copying"][layer] += w * copying_scores(model, layer, cache[act_name("z", layer)], pat,
                                                             tokens[sl], queries=range(half, T)).cpu()
        rows = [Row(self.name, metric, float(arr[layer, head]), layer=layer, head=head)
                for metric, arr in sums.items() for layer in range(L) for head in range(H)]
        return ProbeResult(rows, {m: arr.numpy() for m, arr in sums.items()})


def top_heads(scores: np.ndarray, k: int, min_score: float = 0.0) -> list[tuple[int, int]]:
    """The ``k`` (layer, head) pairs with the highest scores (array (layer, head)) above ``min_score``."""
    order = np.argsort(scores, axis=None)[::-1][:k]
    return [tuple(int(i) for i in np.unravel_index(o, scores.shape)) for o in order
            if scores.flat[o] >= min_score]
