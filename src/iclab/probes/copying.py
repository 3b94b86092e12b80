"""Copying score: does a head's output raise the logit of the token it attends to?

For head ``h`` of layer ``l`` at query position ``i``, its write to the residual stream is
``o = W_O^h z_i^h`` (computed by calling the layer's own output projection on ``z`` with
the other heads zeroed, minus its bias). Its direct effect on the logits is
``d = W_U (norm(o) - norm(0))``: the final norm applied to the head's output alone (so
the per-position scale, which cannot change a ranking, drops out) and the unembedding
without its bias. With ``k* = argmax_k A[i, k]`` the key the head attends to most, the
copying score is the share of queries ``i`` where ``argmax_t d[t] = tokens[k*]``.
A head whose OV circuit copies scores 1; a random one about ``1 / vocab``.

This is the empirical, architecture-independent form of Olsson et al.'s (2022)
eigenvalue-based copying score of ``W_U W_O W_V W_E``: it uses the model's modules as
loaded instead of reading weight matrices per architecture.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from iclab.models.hooks import anatomy


@torch.no_grad()
def head_outputs(model: nn.Module, layer: int, z: torch.Tensor) -> torch.Tensor:
    """Each head's write to the residual stream: z (batch, pos, head, d_head) →
    (batch, pos, head, d_model)."""
    o_proj = anatomy(model).o_proj(layer)
    bias = o_proj(torch.zeros_like(z.flatten(-2)))  # (batch, pos, d_model)
    outs = []
    for h in range(z.shape[2]):  # one head at a time keeps memory at one forward's worth
        only = torch.zeros_like(z)
        only[:, :, h] = z[:, :, h]
        outs.append(o_proj(only.flatten(-2)) - bias)
    return torch.stack(outs, dim=2)  # (batch, pos, head, d_model)


@torch.no_grad()
def direct_logits(model: nn.Module, resid: torch.Tensor) -> torch.Tensor:
    """Direct effect of residual-stream vectors on the logits: (..., d_model) → (..., vocab)."""
    a = anatomy(model)
    normed = a.final_norm(resid) - a.final_norm(torch.zeros_like(resid[..., :1, :]))
    return a.unembed(normed) - a.unembed(torch.zeros_like(normed[..., :1, :]))


@torch.no_grad()
def copying_scores(model: nn.Module, layer: int, z: torch.Tensor, pattern: torch.Tensor, tokens: torch.Tensor,
                   queries: Iterable[int]) -> torch.Tensor:
    """Copying score per head of ``layer`` → (head,).

    Parameters
    ----------
    z : tensor of shape (batch, pos, head, d_head)
    pattern : tensor of shape (batch, head, pos, pos)
    tokens : tensor of shape (batch, pos)
    queries : positions ``i`` to average over.
    """
    q = torch.as_tensor(list(queries), device=z.device)
    outs = head_outputs(model, layer, z[:, q])  # (batch, n_q, head, d_model)
    pred = direct_logits(model, outs.to(next(model.parameters()).dtype)).argmax(-1).to(z.device)  # (batch, n_q, head)
    attended = pattern[:, :, q].argmax(-1)  # (batch, head, n_q)
    target = torch.gather(tokens[:, None, :].expand(-1, pattern.shape[1], -1), 2, attended)  # (batch, head, n_q)
    return (pred.permute(0, 2, 1) == target).float().mean(dim=(0, 2))  # (head,)
