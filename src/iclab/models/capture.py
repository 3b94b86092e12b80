"""Capture activations by name in one forward pass.

``capture(model, inputs, names)`` runs the model once and returns a :class:`Cache`
keyed by the same names that :func:`iclab.models.patch.patch` writes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from iclab.models.hooks import HookFn, eager_attention, hooks
from iclab.models.names import parse_name


class Cache(Mapping):
    """Activations of one forward pass, keyed by activation name.

    ``cache[name]`` has the shape documented in :mod:`iclab.models.names`, e.g.
    ``cache["blocks.1.hook_resid_post"]`` is (batch, pos, d_model) and
    ``cache["blocks.0.attn.hook_pattern"]`` is (batch, head, query_pos, key_pos).
    ``cache.logits`` is the model's output, (batch, pos, vocab) or whatever the model
    returns for vector worlds.
    """

    def __init__(self, acts: dict[str, torch.Tensor], logits: torch.Tensor | None):
        self._acts = acts
        self.logits = logits

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._acts[name]
        except KeyError:
            raise KeyError(f"{name!r} was not captured; captured: {', '.join(self._acts)}") from None

    def __iter__(self):
        return iter(self._acts)

    def __len__(self) -> int:
        return len(self._acts)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._acts.items())
        return f"Cache({shapes})"


def as_model_kwargs(inputs, device: torch.device | None = None) -> dict:
    """The model's keyword arguments for ``inputs``.

    ``inputs`` may be token ids as a tensor, a NumPy array or (nested) lists, of shape
    (batch, pos) or (pos,) for one sequence; a batch with ``.tokens`` (a world's TokenBatch);
    a float tensor or array of shape (batch, pos, d_model), passed as ``inputs_embeds``; or a
    dict of model keyword arguments, passed as it is. Arrays and lists are moved to ``device``.
    """
    if isinstance(inputs, Mapping):
        return dict(inputs)
    inputs = getattr(inputs, "tokens", inputs)
    if not isinstance(inputs, torch.Tensor):
        try:
            arr = np.asarray(inputs)
        except ValueError as e:  # ragged lists
            raise TypeError(f"inputs: token ids must form a rectangular (batch, pos) array ({e})") from None
        if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2, 3):
            raise TypeError(f"inputs must be token ids of shape (batch, pos) or (pos,), embeddings of shape "
                            f"(batch, pos, d_model), or a dict of model arguments; got {type(inputs).__name__} "
                            f"of dtype {arr.dtype} and shape {arr.shape}")
        if arr.ndim == 1:
            arr = arr[None]  # one sequence
        inputs = torch.as_tensor(arr, dtype=torch.long if arr.dtype.kind in "iu" else torch.float32, device=device)
    if inputs.is_floating_point():
        return {"inputs_embeds": inputs}
    return {"input_ids": inputs}


def forward_logits(model: nn.Module, inputs) -> torch.Tensor:
    out = model(**as_model_kwargs(inputs, _device(model)))
    return out.logits if hasattr(out, "logits") else out


def _device(model: nn.Module) -> torch.device | None:
    p = next(model.parameters(), None)
    return None if p is None else p.device


def capture(model: nn.Module, inputs, names: Iterable[str], edits: Mapping[str, HookFn] | None = None,
            grad: bool = False, to_cpu: bool = False) -> Cache:
    """Run ``model`` on ``inputs`` once and keep the activations named in ``names``.

    Parameters
    ----------
    model : PreTrainedModel or wrapper with ``.backbone``
    inputs : token ids (tensor, NumPy array or lists) of shape (batch, pos), or a dict of model
        keyword arguments (see :func:`as_model_kwargs`)
    names : iterable of str
        Activation names (``iclab.models.names``). Attention patterns switch the model to
        eager attention for this pass.
    edits : dict of str to hook function, optional
        Patches applied in the same pass (see :func:`iclab.models.patch.patch`); a name both
        edited and captured is captured after the edit.
    grad : bool, default False
        Keep the autograd graph (for attribution); otherwise run under ``no_grad``.
    to_cpu : bool, default False
        Move captured tensors to the CPU as they are made.
    """
    names = list(dict.fromkeys(names))
    acts: dict[str, torch.Tensor] = {}
    edits = dict(edits or {})

    def keeper(name: str, edit: HookFn | None) -> HookFn:
        def fn(act):
            new = edit(act) if edit is not None else None
            kept = act if new is None else new
            kept = kept if grad else kept.detach()
            acts[name] = kept.cpu() if to_cpu else kept
            return new
        return fn

    read_only = {n for n in names if n not in edits}
    fns = {n: keeper(n, edits.pop(n, None)) for n in names}
    fns.update(edits)
    needs_eager = any(parse_name(n).site == "pattern" for n in names)
    with eager_attention(model, needs_eager), hooks(model, fns, read_only), torch.set_grad_enabled(grad):
        logits = forward_logits(model, inputs)
    missing = [n for n in names if n not in acts]
    if missing:  # a hook that never fired means the architecture table points at the wrong module
        raise RuntimeError(f"capture: no activation arrived for {', '.join(missing)}; "
                           f"the family table may point at a module this model does not call")
    return Cache(acts, logits if grad else logits.detach())
