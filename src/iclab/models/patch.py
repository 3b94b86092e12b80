"""Patch activations by name: replace or add a vector, ablate a head.

The edits are small callables on the activation (shape as in :mod:`iclab.models.names`),
so a patch reads ``clean_cache[name]`` and writes at that same ``name``::

    clean = capture(model, clean_ids, [name])
    logits = patch(model, corrupt_ids, {name: Replace(clean[name][:, -1], pos=-1)})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from iclab.errors import ConfigError
from iclab.models.capture import forward_logits
from iclab.models.hooks import HookFn, hooks


def _positions(act: torch.Tensor, pos) -> tuple:
    """Index into (batch, pos, ...) selecting ``pos``: None (all), int, list, or a (batch,)
    tensor with one position per row."""
    if pos is None:
        return (slice(None), slice(None))
    if isinstance(pos, torch.Tensor) and pos.ndim == 1 and pos.shape[0] == act.shape[0]:
        return (torch.arange(act.shape[0], device=act.device), pos.to(act.device))
    return (slice(None), pos)


@dataclass
class Replace:
    """Set the activation at positions ``pos`` to ``value``.

    ``value`` broadcasts against the selected slice: (d_model,), (batch, d_model) with a
    per-row ``pos``, or the slice's full shape.
    """

    value: torch.Tensor
    pos: int | list[int] | torch.Tensor | None = None

    def __call__(self, act: torch.Tensor) -> torch.Tensor:
        out = act.clone()
        out[_positions(act, self.pos)] = self.value.to(act.dtype).to(act.device)
        return out


@dataclass
class Add:
    """Add ``scale * value`` to the activation at positions ``pos`` (a function vector)."""

    value: torch.Tensor
    pos: int | list[int] | torch.Tensor | None = None
    scale: float = 1.0

    def __call__(self, act: torch.Tensor) -> torch.Tensor:
        out = act.clone()
        idx = _positions(act, self.pos)
        out[idx] = out[idx] + self.scale * self.value.to(act.dtype).to(act.device)
        return out


@dataclass
class AblateHeads:
    """Zero- or mean-ablate heads at a ``z`` site (batch, pos, head, d_head).

    ``mean`` is required for ``mode="mean"``: the head's average ``z``, shape
    (pos, head, d_head) or (head, d_head), e.g. ``clean_cache[name].mean(0)``.
    """

    heads: list[int]
    mode: str = "zero"
    mean: torch.Tensor | None = None

    def __post_init__(self):
        if self.mode not in ("zero", "mean"):
            raise ConfigError(f"AblateHeads.mode={self.mode!r}; allowed: 'zero', 'mean'")
        if self.mode == "mean" and self.mean is None:
            raise ConfigError("AblateHeads(mode='mean') needs mean=<the heads' average z>")

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 4:
            raise ConfigError(f"AblateHeads applies to attn.hook_z (batch, pos, head, d_head), got shape {tuple(z.shape)}")
        out = z.clone()
        if self.mode == "zero":
            out[:, :, self.heads] = 0.0
        else:
            m = self.mean.to(z.dtype).to(z.device)
            m = m[-z.shape[1]:] if m.ndim == 3 else m  # (pos, head, d_head) or (head, d_head)
            out[:, :, self.heads] = m[..., self.heads, :].expand_as(out[:, :, self.heads])
        return out


def patch(model: nn.Module, inputs, edits: Mapping[str, HookFn], tokenizer=None) -> torch.Tensor:
    """Run ``model`` on ``inputs`` with ``edits`` (activation name → edit) applied.

    ``inputs`` are what :func:`iclab.models.capture.capture` takes (token ids or text; text is
    tokenised with ``tokenizer`` or the model's own). Returns the logits, (batch, pos,
    vocab). Runs under ``no_grad``.
    """
    ran: set[str] = set()

    def tracked(name: str, edit: HookFn) -> HookFn:
        def fn(act):
            ran.add(name)
            return edit(act)
        return fn

    with hooks(model, {n: tracked(n, e) for n, e in edits.items()}), torch.no_grad():
        logits = forward_logits(model, inputs, tokenizer)
    missed = [n for n in edits if n not in ran]
    if missed:  # an edit that never ran would return unpatched logits as if patched
        raise RuntimeError(f"patch: the edit at {', '.join(missed)} never ran; this model's forward does not "
                           f"pass through that site with these inputs")
    return logits
