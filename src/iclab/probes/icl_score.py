"""The in-context learning score (Olsson et al. 2022): loss late in a context minus loss early.

ICL score = mean_b loss(b, late) - mean_b loss(b, early), where ``loss(b, t)`` is the
next-token cross-entropy of predicting ``tokens[b, t]`` from ``tokens[b, :t]``. Negative
means the model predicts better with more context; Olsson et al. use tokens 500 and 50 of
natural text, and on repeated prompts ``[r, r]`` of half ``h`` the natural choice is a
token of each copy. Also returns the whole per-position loss curve as an array.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from iclab.models.capture import forward_logits
from iclab.probes.base import Probe, as_tokens, batched
from iclab.probes.result import ProbeResult
from iclab.rows import Row


@torch.no_grad()
def per_position_loss(model, tokens: torch.Tensor, batch_size: int = 64, forward=forward_logits) -> torch.Tensor:
    """Mean next-token loss at each position, (pos,); entry 0 is NaN (nothing predicts it)."""
    total = torch.zeros(tokens.shape[1] - 1)
    for sl in batched(tokens.shape[0], batch_size):
        t = tokens[sl]
        logits = forward(model, t)[:, :-1].float()  # (batch, pos - 1, vocab)
        loss = F.cross_entropy(logits.flatten(0, 1), t[:, 1:].flatten(), reduction="none").view(t.shape[0], -1)
        total += loss.sum(0).cpu()
    return torch.cat([torch.tensor([float("nan")]), total / tokens.shape[0]])


class ICLScore(Probe):
    """In-context learning score: loss at token ``late`` minus loss at token ``early``.

    Parameters
    ----------
    early, late : int
        Token positions (0-based, ``1 <= early < late``), checked against the prompts.
    batch_size : int, default 64
    """

    name: ClassVar[str] = "icl"
    early: int = Field(ge=1)
    late: int = Field(ge=2)
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _order(self):
        if self.early >= self.late:
            raise ValueError(f"early ({self.early}) must be < late ({self.late})")
        return self

    def __call__(self, model, prompts, forward=forward_logits) -> ProbeResult:
        tokens = as_tokens(model, prompts)
        if self.late >= tokens.shape[1]:
            raise ValueError(f"late={self.late} is beyond the prompts' length {tokens.shape[1]}")
        curve = per_position_loss(model, tokens, self.batch_size, forward)
        rows = [Row(self.name, "icl_score", float(curve[self.late] - curve[self.early])),
                Row(self.name, "loss", float(curve[self.early]), pos=self.early),
                Row(self.name, "loss", float(curve[self.late]), pos=self.late)]
        return ProbeResult(rows, {"loss_by_pos": curve.numpy()})
