"""Sample continuations of equal-length prompts from a causal LM, with a KV cache.

``x_{t+1} ~ softmax(logits_t / temperature)`` over the model's whole vocabulary, one
token at a time, drawn from an explicit ``torch.Generator`` so that a seed gives the same
tokens on every run. The prompt is read once; each new token is fed alone with the
model's cache (``cache=`` in recent ``transformers`` 5.x, ``past_key_values=`` before).
A model that returns no cache (a scripted test model, a wrapper) is fed the whole
sequence at every step instead: slower, same distribution.

Prompts in one call have the same length, so no padding or attention mask is needed;
the ICTR probe batches prompts by shot count.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
from torch import nn


def _cache_kwarg(model: nn.Module) -> str | None:
    """Name of the forward argument that takes the KV cache, or None if there is none."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _cache_of(out) -> object | None:
    for name in ("cache", "past_key_values"):  # the first only: reading the old name warns
        value = out.get(name) if isinstance(out, Mapping) else getattr(out, name, None)
        if value is not None:
            return value
    return None


def _logits_of(out) -> torch.Tensor:
    return out["logits"] if isinstance(out, Mapping) else out.logits


@torch.no_grad()
def sample_continuations(model: nn.Module, tokens: torch.Tensor, n_new: int, generator: torch.Generator,
                         temperature: float = 1.0) -> torch.Tensor:
    """Sample ``n_new`` tokens after each prompt.

    Parameters
    ----------
    model : causal LM
        Called as ``model(input_ids=..., use_cache=True[, cache=...])``; its output has
        ``logits`` of shape (batch, pos, vocab) (only the last position is read).
    tokens : LongTensor of shape (batch, pos)
        Prompts, all of the same length, on the model's device.
    n_new : int
        Tokens to sample per prompt.
    generator : torch.Generator
        On the model's device; the only source of randomness.
    temperature : float, default 1.0

    Returns
    -------
    LongTensor of shape (batch, n_new), on the model's device.
    """
    key = _cache_kwarg(model)
    first = {"use_cache": True} if key else {}
    if key and "logits_to_keep" in inspect.signature(model.forward).parameters:
        first["logits_to_keep"] = 1  # only the last position's logits are needed
    out = model(input_ids=tokens, **first)
    cache = _cache_of(out) if key else None
    seq, new = tokens, []
    for i in range(n_new):
        logits = _logits_of(out)[:, -1].float()  # (batch, vocab)
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=generator)  # (batch, 1)
        new.append(nxt)
        if i + 1 == n_new:
            break
        if cache is not None:
            out = model(input_ids=nxt, use_cache=True, **{key: cache})
            cache = _cache_of(out)
        else:
            seq = torch.cat([seq, nxt], dim=1)  # (batch, pos + i + 1)
            out = model(input_ids=seq)
    return torch.cat(new, dim=1)  # (batch, n_new)


def vocab_size_of(model: nn.Module) -> int | None:
    """The model's output vocabulary from its config or unembedding, None if neither says."""
    cfg = getattr(model, "config", None)
    v = getattr(cfg, "vocab_size", None)
    if isinstance(v, int):
        return v
    get_out = getattr(model, "get_output_embeddings", None)
    emb = get_out() if callable(get_out) else None
    return int(emb.weight.shape[0]) if emb is not None else None
