"""Capture activations by name in one forward pass.

``capture(model, inputs, names)`` runs the model once and returns a :class:`Cache`
keyed by the same names that :func:`iclab.models.patch.patch` writes to::

    cache = capture(model, "The cat sat on the", "blocks.*.hook_resid_post", tokenizer=tok)
    cache = capture(model, ids, lambda name: name.endswith("attn.hook_pattern"))
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from iclab.models.hooks import HookFn, backbone, hooks, model_names
from iclab.models.names import NamesFilter, select_names
from iclab.models.placement import execution_device


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


def model_tokenizer(model: nn.Module):
    """The tokenizer ``load_model`` attached to ``model`` (or to its backbone), or None."""
    return getattr(model, "iclab_tokenizer", None) or getattr(backbone(model), "iclab_tokenizer", None)


def _tokenize(texts: list[str], tokenizer) -> dict:
    enc = [tokenizer(t)["input_ids"] for t in texts]
    lengths = {len(e) for e in enc}
    if len(lengths) == 1:
        return {"input_ids": torch.tensor(enc, dtype=torch.long)}
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        raise TypeError(f"inputs: {len(texts)} texts of different token lengths ({min(lengths)} to {max(lengths)}) "
                        f"and the tokenizer has no pad token; give texts of one length or token ids")
    width = max(lengths)
    ids = torch.full((len(enc), width), int(pad), dtype=torch.long)  # (batch, pos), right-padded
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        mask[i, : len(e)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def as_model_kwargs(inputs, device: torch.device | None = None, tokenizer=None) -> dict:
    """The model's keyword arguments for ``inputs``.

    ``inputs`` may be token ids as a tensor, a NumPy array or (nested) lists, of shape
    (batch, pos) or (pos,) for one sequence; a batch with ``.tokens`` (a world's TokenBatch);
    a float tensor or array of shape (batch, pos, d_model), passed as ``inputs_embeds``; text,
    a string or a list of strings, tokenised with ``tokenizer`` (texts of different lengths
    are right-padded, with an attention mask); or a dict of model keyword arguments, passed as
    it is. Arrays, lists and text are moved to ``device``.
    """
    if isinstance(inputs, Mapping):
        return dict(inputs)
    inputs = getattr(inputs, "tokens", inputs)
    if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs
                                   and all(isinstance(t, str) for t in inputs)):
        if tokenizer is None:
            raise TypeError("inputs: text needs a tokenizer (pass tokenizer=, or load the model with load_model, "
                            "which attaches its own); otherwise give token ids")
        kwargs = _tokenize([inputs] if isinstance(inputs, str) else list(inputs), tokenizer)
        return {k: v.to(device) for k, v in kwargs.items()}
    if not isinstance(inputs, torch.Tensor):
        try:
            arr = np.asarray(inputs)
        except ValueError as e:  # ragged lists
            raise TypeError(f"inputs: token ids must form a rectangular (batch, pos) array ({e})") from None
        if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2, 3):
            raise TypeError(f"inputs must be token ids of shape (batch, pos) or (pos,), embeddings of shape "
                            f"(batch, pos, d_model), text, or a dict of model arguments; got {type(inputs).__name__} "
                            f"of dtype {arr.dtype} and shape {arr.shape}")
        if arr.ndim == 1:
            arr = arr[None]  # one sequence
        inputs = torch.as_tensor(arr, dtype=torch.long if arr.dtype.kind in "iu" else torch.float32, device=device)
    if inputs.is_floating_point():
        return {"inputs_embeds": inputs}
    return {"input_ids": inputs}


def forward_logits(model: nn.Module, inputs, tokenizer=None) -> torch.Tensor:
    kwargs = as_model_kwargs(inputs, _device(model), tokenizer or model_tokenizer(model))
    out = model(**kwargs)
    return out.logits if hasattr(out, "logits") else out


def _device(model: nn.Module) -> torch.device:
    return execution_device(model)  # a dispatched model's first layer may be offloaded ("meta")


def capture(model: nn.Module, inputs, names: NamesFilter, edits: Mapping[str, HookFn] | None = None,
            grad: bool = False, to_cpu: bool = False, tokenizer=None) -> Cache:
    """Run ``model`` on ``inputs`` once and keep the activations named in ``names``.

    Parameters
    ----------
    model : PreTrainedModel or wrapper with ``.backbone``
    inputs : token ids (tensor, NumPy array or lists) of shape (batch, pos), text (a string
        or a list of strings), or a dict of model keyword arguments (see :func:`as_model_kwargs`)
    names : str, iterable of str, or callable
        Activation names (``iclab.models.names``), glob patterns over this model's names
        (``"blocks.*.hook_resid_post"``), or a predicate ``fn(name) -> bool`` (TransformerLens's
        ``names_filter``). Sites inside attention (q, k, v, pattern) run the model on a
        wrapper of its own attention; on SDPA, patterns are computed from the queries and
        keys of the requested layers (:mod:`iclab.models.patterns`).
    edits : dict of str to hook function, optional
        Patches applied in the same pass (see :func:`iclab.models.patch.patch`); a name both
        edited and captured is captured after the edit.
    grad : bool, default False
        Keep the autograd graph (for attribution); otherwise run under ``no_grad``.
    to_cpu : bool, default False
        Move captured tensors to the CPU as they are made.
    tokenizer : optional
        Tokenises text ``inputs``; defaults to the one ``load_model`` attached to the model.

    Examples
    --------
    >>> cache = capture(model, ids, "blocks.*.hook_resid_post")   # every layer's output
    >>> cache["blocks.0.hook_resid_post"].shape                    # (batch, pos, d_model)
    """
    names = select_names(names, model_names(model))
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
    with hooks(model, fns, read_only), torch.set_grad_enabled(grad):
        logits = forward_logits(model, inputs, tokenizer)
    missing = [n for n in names if n not in acts]
    if missing:  # a hook that never fired means the architecture table points at the wrong module
        raise RuntimeError(f"capture: no activation arrived for {', '.join(missing)}; "
                           f"the family table may point at a module this model does not call (sites inside attention "
                           f"are read by iclab's eager or SDPA attention wrapper, which this pass did not run)")
    return Cache(acts, logits if grad else logits.detach())
