"""Attention patterns from the queries and keys an attention function receives, so that a
model can keep its forward on SDPA (which returns no weights) while some layers' patterns
are read.

For query ``q`` (batch, head, query_pos, d_head) and key ``k`` (batch, kv_head, key_pos,
d_head) as HF hands them to the attention function (rotary already applied, each KV head
read by ``head // (head / kv_head)`` query heads)::

    pattern = softmax(scaling * q @ k^T + mask + position_bias)    (batch, head, query_pos, key_pos)

with the family's ``scaling`` (``head_dim ** -0.5``, Gemma's ``query_pre_attn_scalar``,
GPT-2's inverse layer index...: the value the module passes), the mask the model built for
SDPA (causal, padding and sliding windows; None means SDPA's own ``is_causal``, a lower
triangle), and an additive ``position_bias`` (ALiBi-like biases passed to SDPA) on top. The
softmax runs in float32 and is cast to the query's dtype, as the eager attention of every
family in iclab's table does (GPT-2's softmaxes in the input dtype: the same in fp32).

What SDPA does not compute this way is refused by :func:`sdpa_exact` (tanh softcapping of
the scores, attention sinks, dropout in training); for those layers the caller runs the
family's eager attention instead, with the additive mask of :func:`additive_mask`.
"""

from __future__ import annotations

import torch
from torch import nn


def sdpa_exact(module: nn.Module, kwargs: dict) -> bool:
    """Whether :func:`pattern_from_qk` gives the weights the attention call with ``kwargs``
    uses: no softcapping, no sinks, no dropout in training."""
    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None or kwargs.get("sinks") is not None:
        return False
    return not (module.training and kwargs.get("dropout", 0.0))


def _causal(module: nn.Module, q_len: int, is_causal: bool | None) -> bool:
    """SDPA's rule: a lower triangle when no mask is given, the module is causal and more than
    one query is asked."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    return bool(causal) and q_len > 1


def additive_mask(module: nn.Module, attention_mask: torch.Tensor | None, q_len: int, k_len: int,
                  dtype: torch.dtype, device: torch.device, is_causal: bool | None = None) -> torch.Tensor | None:
    """The mask SDPA applies, as eager attention takes it: 0 where a query reads a key and the
    dtype's lowest value elsewhere; shape broadcastable to (batch, head, query_pos, key_pos).
    A boolean mask (True: attend) is turned into that, a float one is already additive, and
    None is SDPA's ``is_causal`` (the lower triangle of the first ``k_len`` columns)."""
    low = torch.finfo(dtype).min
    if attention_mask is None:
        if not _causal(module, q_len, is_causal):
            return None
        tri = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()  # (query_pos, key_pos)
        return torch.zeros((), dtype=dtype, device=device).masked_fill(~tri, low)  # (query_pos, key_pos)
    if attention_mask.dtype == torch.bool:
        return torch.zeros((), dtype=dtype, device=device).masked_fill(~attention_mask, low)
    return attention_mask.to(dtype)


def pattern_from_qk(module: nn.Module, query: torch.Tensor, key: torch.Tensor, attention_mask: torch.Tensor | None,
                    scaling: float | None = None, is_causal: bool | None = None,
                    position_bias: torch.Tensor | None = None, **_) -> torch.Tensor:
    """The attention pattern (batch, head, query_pos, key_pos) of one SDPA call (module
    docstring). ``query`` (batch, head, query_pos, d_head), ``key`` (batch, kv_head,
    key_pos, d_head); the other arguments are those the module passes to its attention."""
    group = query.shape[1] // key.shape[1]
    if group > 1:
        key = key.repeat_interleave(group, dim=1)  # (batch, head, key_pos, d_head)
    q_len, k_len = query.shape[2], key.shape[2]
    if attention_mask is None and _causal(module, q_len, is_causal) and k_len > q_len:
        key, k_len = key[:, :, :q_len], q_len  # SDPA drops the keys an empty static cache holds
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (batch, head, query_pos, key_pos)
    mask = additive_mask(module, attention_mask, q_len, k_len, scores.dtype, scores.device, is_causal)
    if position_bias is not None:  # as SDPA combines them: the bias where a key is read, a float mask added
        bias = position_bias.to(scores.dtype)
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            mask = bias + mask
        else:
            mask = bias if mask is None else torch.where(mask == 0, bias, mask)
    if mask is not None:
        scores = scores + mask
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
