"""Activation-patching sweep: which activations carry the difference between a clean and a
corrupted prompt.

For an activation ``a`` at layer ``l`` (one position of the residual stream, or one head
at every position), run the corrupted prompt with ``a`` replaced by its value in the clean
run, and score the result (the logit difference ``logit[answer] - logit[baseline]`` at the
read position, :mod:`iclab.probes.contrast`). The normalised effect

    effect(a) = (score_patched(a) - score_corrupt) / (score_clean - score_corrupt)

is 1 where patching ``a`` alone restores the clean behaviour and 0 where it does nothing
(Meng et al. 2022, "Locating and Editing Factual Associations in GPT"; Wang et al. 2023's
path to the IOI circuit; TransformerLens's ``patching.get_act_patch_resid_pre`` and
``get_act_patch_attn_head_out_all_pos``). Two sweeps:

- **layer × position** over a residual-stream site (``resid_site``, default ``resid_pre``):
  one run per (layer, position);
- **layer × head** over a per-head site (``head_site``, default ``z``; also ``result``,
  ``q``, ``pattern``, and ``k``/``v`` per KV head), every position at once: one run per
  (layer, head).

Rows (``probe="activation_patching"``): ``patch_<resid_site>`` with ``layer`` and ``pos``,
``patch_<head_site>`` with ``layer`` and ``head`` (means over prompts), and the scores
``score_clean`` and ``score_corrupt``. Arrays: ``resid`` (layer, pos), ``heads`` (layer,
head); :func:`iclab.figures.causal.patching_heatmaps` draws them.

Example::

    from iclab.probes.activation_patching import ActivationPatching
    from iclab.probes.contrast import contrast_prompts
    prompts = contrast_prompts(clean_ids, answer=a, baseline=b, corrupt=corrupt_ids)
    result = ActivationPatching()(model, prompts)
    result.arrays["heads"]          # (layer, head): 1 = this head restores the clean answer
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from iclab.errors import InputError
from iclab.models.capture import capture, forward_logits
from iclab.models.hooks import anatomy, hooks
from iclab.models.names import StreamSite, act_name
from iclab.probes.base import Probe, model_device
from iclab.probes.contrast import ContrastPrompts, score
from iclab.probes.result import ProbeResult
from iclab.rows import Row

HeadSite = Literal["z", "result", "q", "k", "v", "pattern"]


def _replace_head(clean: torch.Tensor, head: int, axis: int):
    def edit(act):
        out = act.clone()
        idx = (slice(None),) * axis + (head,)
        out[idx] = clean[idx].to(act.dtype)
        return out
    return edit


def _replace_position(clean: torch.Tensor, pos: int):
    def edit(act):
        out = act.clone()
        out[:, pos] = clean[:, pos].to(act.dtype)
        return out
    return edit


@torch.no_grad()
def patching_sweep(model: nn.Module, prompts: ContrastPrompts, resid_site: StreamSite | None = "resid_pre",
                   head_site: HeadSite | None = "z") -> dict[str, np.ndarray]:
    """Normalised patching effects (module docstring).

    Returns
    -------
    dict with ``"resid"`` (layer, pos) and ``"heads"`` (layer, head) (where the site is not
    None), each averaged over prompts, and ``"score_clean"``, ``"score_corrupt"`` (n,).
    """
    if prompts.corrupt is None:
        raise InputError("a patching sweep needs corrupted prompts (ContrastPrompts.corrupt)")
    a = anatomy(model)
    dev = model_device(model)
    clean_ids, corrupt_ids = prompts.clean.to(dev), prompts.corrupt.to(dev)
    L, T = a.n_layers, clean_ids.shape[1]
    names = []
    if resid_site is not None:
        names += [act_name(resid_site, l) for l in range(L)]
    if head_site is not None:
        names += [act_name(head_site, l) for l in range(L)]
    clean = capture(model, clean_ids, names)
    s_clean = score(clean.logits, prompts)
    s_corrupt = score(forward_logits(model, corrupt_ids), prompts)
    gap = (s_clean - s_corrupt).mean()
    if abs(float(gap)) < 1e-6:
        raise InputError("the clean and corrupted prompts score the same (mean score difference 0): nothing to restore")

    def effect(edits) -> float:
        with hooks(model, edits):
            patched = score(forward_logits(model, corrupt_ids), prompts)
        return float((patched - s_corrupt).mean() / gap)

    out: dict[str, np.ndarray] = {"score_clean": s_clean.cpu().numpy(), "score_corrupt": s_corrupt.cpu().numpy()}
    if resid_site is not None:
        resid = np.zeros((L, T))
        for l in range(L):
            name = act_name(resid_site, l)
            for p in range(T):
                resid[l, p] = effect({name: _replace_position(clean[name], p)})
        out["resid"] = resid
    if head_site is not None:
        axis = 1 if head_site == "pattern" else 2  # pattern: (batch, head, q, k); others (batch, pos, head, ...)
        n_heads = clean[act_name(head_site, 0)].shape[axis]
        heads = np.zeros((L, n_heads))
        for l in range(L):
            name = act_name(head_site, l)
            for h in range(n_heads):
                heads[l, h] = effect({name: _replace_head(clean[name], h, axis)})
        out["heads"] = heads
    return out


class ActivationPatching(Probe):
    """Layer × position and layer × head patching sweeps (module docstring).

    Parameters
    ----------
    resid_site : {"resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"} or None, default "resid_pre"
    head_site : {"z", "result", "q", "k", "v", "pattern"} or None, default "z"

    Call with ``(model, prompts)``, ``prompts`` a :class:`~iclab.probes.contrast.ContrastPrompts`
    with ``corrupt`` prompts. Without a baseline the score is ``log p(answer)``.
    """

    name: ClassVar[str] = "activation_patching"
    resid_site: StreamSite | None = "resid_pre"
    head_site: HeadSite | None = "z"

    def __call__(self, model: nn.Module, prompts: ContrastPrompts) -> ProbeResult:
        res = patching_sweep(model, prompts, self.resid_site, self.head_site)
        rows = [Row(self.name, "score_clean", res["score_clean"].mean()),
                Row(self.name, "score_corrupt", res["score_corrupt"].mean())]
        if "resid" in res:
            rows += [Row(self.name, f"patch_{self.resid_site}", v, layer=l, pos=p)
                     for (l, p), v in np.ndenumerate(res["resid"])]
        if "heads" in res:
            rows += [Row(self.name, f"patch_{self.head_site}", v, layer=l, head=h)
                     for (l, h), v in np.ndenumerate(res["heads"])]
        return ProbeResult(rows, {k: res[k] for k in ("resid", "heads") if k in res})
