"""Direct logit attribution: each component's share of ``logit[answer] - logit[baseline]``.

The final residual at the read position is a sum of components (the identities of
:mod:`iclab.models.identities`, which this probe requires)::

    resid_post_{L-1} = embed + pos_embed + sum_l ( sum_h result_{l,h} + b_O,l + mlp_out_l )

With the final norm's scale ``s`` held at its value on this prompt (its ``hook_scale``),
the norm is linear, ``norm(x) = w * c(x) / s + b`` (:mod:`iclab.models.norms`), so the
logit difference splits exactly into one term per component::

    DLA(component) = (w * c(component) / s) · (W_U[answer] - W_U[baseline])
    logit diff     = sum of DLA over components + b · (W_U[answer] - W_U[baseline]) + b_U[answer] - b_U[baseline]

(TransformerLens's ``cache.decompose_resid`` + ``apply_ln_to_stack`` + ``logit_attrs``.)
Rows (``probe="dla"``, means over prompts): ``dla_head`` (layer, head), ``dla_attn_bias``
(layer), ``dla_mlp`` (layer), ``dla_embed``, ``dla_pos_embed`` (learned positions only),
``dla_bias`` (the final norm's and the unembedding's biases) and ``logit_diff`` (the
model's own); the terms sum to ``logit_diff``. Arrays: ``heads`` (layer, head), ``mlp``
(layer,), ``attn_bias`` (layer,).

Example::

    from iclab.probes.dla import direct_logit_attribution
    dla = direct_logit_attribution(model, ids, answer=[7], baseline=[3])
    dla.heads[0]            # (layer, head): each head's direct effect on the logit difference
    dla.total()             # equals dla.logit_diff
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import ConfigError, InputError
from iclab.models.capture import capture, model_tokenizer
from iclab.models.hooks import anatomy, head_weights, model_names
from iclab.models.identities import require_identities
from iclab.models.names import act_name
from iclab.models.norms import frozen_norm, norm_affine
from iclab.models.placement import module_tensor
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.contrast import ContrastPrompts
from iclab.probes.result import ProbeResult
from iclab.rows import Row


@dataclass(frozen=True)
class Attribution:
    """Direct effects on ``logit[answer] - logit[baseline]``, per prompt (all float32, CPU).

    Attributes
    ----------
    heads : Tensor (batch, layer, head)
    attn_bias : Tensor (batch, layer)
        The output projections' biases.
    mlp : Tensor (batch, layer)
    embed, pos_embed, bias : Tensor (batch,)
        Token embedding, learned positions (zeros without), and the final norm's and
        unembedding's biases.
    logit_diff : Tensor (batch,)
        The model's own logit difference.
    """

    heads: torch.Tensor
    attn_bias: torch.Tensor
    mlp: torch.Tensor
    embed: torch.Tensor
    pos_embed: torch.Tensor
    bias: torch.Tensor
    logit_diff: torch.Tensor

    def total(self) -> torch.Tensor:
        """The sum of every term, (batch,): equal to ``logit_diff`` up to rounding."""
        return (self.heads.sum((1, 2)) + self.attn_bias.sum(1) + self.mlp.sum(1) + self.embed + self.pos_embed
                + self.bias)


def _unembed_direction(unembed: nn.Module, answer: torch.Tensor, baseline: torch.Tensor):
    """``W_U[answer] - W_U[baseline]`` (batch, d_model) and the bias difference (batch,)."""
    w = module_tensor(unembed, "weight")  # offloaded to the CPU or disk too
    if not isinstance(unembed, nn.Linear) or w is None:
        raise ConfigError(f"direct logit attribution needs a linear unembedding; this model's is "
                          f"{type(unembed).__name__}")
    d = (w[answer] - w[baseline]).float()  # (batch, d_model)
    b = module_tensor(unembed, "bias")
    answer, baseline = answer.to(w.device), baseline.to(w.device)
    db = (b[answer] - b[baseline]).float() if b is not None else torch.zeros(len(answer), device=w.device)
    return d, db


@torch.no_grad()
def direct_logit_attribution(model: nn.Module, inputs, answer, baseline, pos=None, tokenizer=None) -> Attribution:
    """Split each prompt's logit difference at ``pos`` into direct effects (module docstring).

    Parameters
    ----------
    model : PreTrainedModel
    inputs : token ids (batch, seq) or text
    answer, baseline : int or sequence of int, one per prompt
    pos : int, sequence of int or None
        Read position of each prompt; default the last.
    """
    require_identities(model)
    a = anatomy(model)
    if a.family.attn_out_norm is not None or a.family.mlp_out_norm is not None:
        raise ConfigError("direct logit attribution needs the block outputs added to the residual as they are; "
                          "this family normalises them first (Gemma 2/3), so no head has a direct effect of its own")
    names = set(model_names(model))
    want = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale"] + [
        act_name(s, l) for l in range(a.n_layers) for s in ("result", "mlp_out")]
    cache = capture(model, inputs, [n for n in want if n in names], tokenizer=tokenizer or model_tokenizer(model))
    emb = cache["hook_embed"]
    B, T = emb.shape[:2]
    dev = emb.device
    pos_t = torch.full((B,), T - 1, dtype=torch.long) if pos is None else torch.as_tensor(pos).reshape(-1).long()
    ans = torch.as_tensor(answer).reshape(-1).long()
    base = torch.as_tensor(baseline).reshape(-1).long()
    pos_t, ans, base = (t.expand(B).clone() if t.numel() == 1 else t for t in (pos_t, ans, base))
    if not (pos_t.shape == ans.shape == base.shape == (B,)):
        raise InputError(f"answer, baseline and pos need one entry per prompt ({B})")
    pos_t, ans, base = pos_t.to(dev), ans.to(dev), base.to(dev)
    rows = torch.arange(B, device=dev)
    d, db = _unembed_direction(a.unembed, ans, base)
    d, db = d.to(dev), db.to(dev)
    aff = norm_affine(a.final_norm, emb.shape[-1])
    scale = cache["ln_final.hook_scale"][rows, pos_t].float()  # (batch, 1)

    def attr(component: torch.Tensor) -> torch.Tensor:
        """(batch, ..., d_model) at the read position → (batch, ...)."""
        normed = frozen_norm(a.final_norm, aff, component, scale.view(B, *([1] * (component.ndim - 2)), 1))
        return torch.einsum("b...d,bd->b...", normed, d)

    heads, attn_bias, mlp = [], [], []
    for l in range(a.n_layers):
        heads.append(attr(cache[act_name("result", l)][rows, pos_t]))  # (batch, head)
        _, b_o = head_weights(a.o_proj(l), a.n_heads)
        attn_bias.append(attr(b_o.to(dev).float().expand(B, -1)))  # (batch,)
        mlp.append(attr(cache[act_name("mlp_out", l)][rows, pos_t]))  # (batch,)
    embed = attr(emb[rows, pos_t])
    pos_embed = attr(cache["hook_pos_embed"][rows, pos_t]) if "hook_pos_embed" in cache else torch.zeros_like(embed)
    bias = (aff.bias.to(dev)[None] * d).sum(-1) + db  # (batch,)
    at = cache.logits[rows, pos_t].float()  # (batch, vocab)
    logit_diff = at[rows, ans] - at[rows, base]
    cpu = lambda t: t.float().cpu()  # noqa: E731
    return Attribution(cpu(torch.stack(heads, 1)), cpu(torch.stack(attn_bias, 1)), cpu(torch.stack(mlp, 1)),
                       cpu(embed), cpu(pos_embed), cpu(bias), cpu(logit_diff))


class DirectLogitAttribution(Probe):
    """Mean direct effect of every head, MLP and bias on the logit difference (module docstring).

    Parameters
    ----------
    batch_size : int, default 16

    Call with ``(model, prompts)``, ``prompts`` a :class:`~iclab.probes.contrast.ContrastPrompts`
    with a baseline.
    """

    name: ClassVar[str] = "dla"
    batch_size: int = Field(16, ge=1, le=4096)

    def __call__(self, model: nn.Module, prompts: ContrastPrompts) -> ProbeResult:
        if prompts.baseline is None:
            raise InputError("direct logit attribution scores logit[answer] - logit[baseline]: give a baseline")
        dev = model_device(model)
        parts = [direct_logit_attribution(model, prompts.clean[sl].to(dev), prompts.answer[sl], prompts.baseline[sl],
                                          prompts.pos[sl]) for sl in batched(len(prompts), self.batch_size)]
        cat = {f: torch.cat([getattr(p, f) for p in parts]).mean(0).numpy()
               for f in ("heads", "attn_bias", "mlp", "embed", "pos_embed", "bias", "logit_diff")}
        L, H = cat["heads"].shape
        rows = [Row(self.name, "dla_head", cat["heads"][l, h], layer=l, head=h) for l in range(L) for h in range(H)]
        rows += [Row(self.name, "dla_attn_bias", cat["attn_bias"][l], layer=l) for l in range(L)]
        rows += [Row(self.name, "dla_mlp", cat["mlp"][l], layer=l) for l in range(L)]
        rows += [Row(self.name, m, cat[k]) for m, k in (("dla_embed", "embed"), ("dla_pos_embed", "pos_embed"),
                                                         ("dla_bias", "bias"), ("logit_diff", "logit_diff"))]
        return ProbeResult(rows, {"heads": np.asarray(cat["heads"]), "mlp": np.asarray(cat["mlp"]),
                                  "attn_bias": np.asarray(cat["attn_bias"])})
