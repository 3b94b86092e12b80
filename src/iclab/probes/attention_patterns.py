"""Attention-pattern views: chosen heads' patterns on a prompt, with token labels, and a few
numbers that summarise each head.

For head ``h`` of layer ``l`` with pattern ``A[q, k]`` (``blocks.{l}.attn.hook_pattern``,
each row a distribution over keys ``k <= q``), averaged over the prompts' query positions:

- ``attn_entropy``: ``-sum_k A[q, k] log A[q, k]`` (0 for a head that attends to one token);
- ``attn_prev``: ``A[q, q - 1]``, attention to the previous token (a previous-token head: 1);
- ``attn_first``: ``A[q, 0]``, attention to the first token (an attention sink);
- ``attn_self``: ``A[q, q]``.

Rows (``probe="attention_patterns"``, one per head and metric; ``layer``, ``head``).
Arrays: ``pattern`` (n_heads_chosen, query, key) of the first prompt, ``heads``
(n_heads_chosen, 2) and ``tokens`` (the first prompt's tokens as text, from the model's
tokenizer, or their ids). :func:`iclab.figures.causal.attention_patterns` draws them::

    from iclab.probes.attention_patterns import AttentionPatterns
    from iclab.figures.causal import attention_patterns
    res = AttentionPatterns(heads=[(1, 0), (1, 2)])(model, ids)
    fig = attention_patterns(res.arrays["pattern"], res.arrays["tokens"], res.arrays["heads"])
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import InputError
from iclab.models.capture import capture, model_tokenizer
from iclab.models.hooks import anatomy
from iclab.models.names import act_name
from iclab.probes.base import Probe, as_tokens
from iclab.probes.result import ProbeResult
from iclab.rows import Row


def head_summaries(pattern: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summaries of patterns (batch, head, query, key) → each (head,), averaged over the batch
    and the query positions (``attn_prev`` over queries >= 1)."""
    p = pattern.float()
    ent = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (batch, head, query)
    return {"attn_entropy": ent.mean((0, 2)),
            "attn_prev": p.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2)),
            "attn_first": p[..., 0].mean((0, 2)),
            "attn_self": p.diagonal(dim1=-2, dim2=-1).mean((0, 2))}


class AttentionPatterns(Probe):
    """Patterns of the chosen heads, and their summaries (module docstring).

    Parameters
    ----------
    heads : list of (layer, head) or None, default None
        The heads to show; None: every head.

    Call with ``(model, prompts)``: token ids (n, pos) or a batch with ``.tokens``.
    """

    name: ClassVar[str] = "attention_patterns"
    heads: list[tuple[int, int]] | None = Field(None, max_length=100_000)

    def __call__(self, model: nn.Module, prompts) -> ProbeResult:
        a = anatomy(model)
        heads = self.heads if self.heads is not None else [(l, h) for l in range(a.n_layers) for h in range(a.n_heads)]
        bad = [(l, h) for l, h in heads if not (0 <= l < a.n_layers and 0 <= h < a.n_heads)]
        if bad:
            raise InputError(f"heads {bad} do not exist; the model has layers 0..{a.n_layers - 1} and heads "
                             f"0..{a.n_heads - 1}")
        tokens = as_tokens(model, prompts)
        layers = sorted({l for l, _ in heads})
        cache = capture(model, tokens, [act_name("pattern", l) for l in layers])
        rows, shown = [], []
        for l, h in heads:
            pat = cache[act_name("pattern", l)][:, h:h + 1]  # (batch, 1, query, key)
            for metric, v in head_summaries(pat).items():
                rows.append(Row(self.name, metric, float(v[0]), layer=l, head=h))
            shown.append(pat[0, 0].float().cpu().numpy())
        tok = model_tokenizer(model)
        first = tokens[0].tolist()
        labels = [tok.decode([t]) for t in first] if tok is not None else [str(t) for t in first]
        return ProbeResult(rows, {"pattern": np.stack(shown), "heads": np.array(heads, dtype=np.int64).reshape(-1, 2),
                                  "tokens": np.array(labels)})
