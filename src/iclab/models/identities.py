"""Identity checks: the activations iclab names add up to what the model computes.

On one short input (a few tokens, one forward pass) these must hold, per layer ``l``:

==========================  ====================================================================
identity                    equation
==========================  ====================================================================
``embed``                   ``hook_embed (+ hook_pos_embed) = blocks.0.hook_resid_pre``
``residual``                ``resid_pre + attn_out + mlp_out = resid_post`` (sequential and
                            parallel-attention blocks alike: both add both outputs to the input)
``chain``                   ``resid_post[l] = resid_pre[l + 1]``
``heads``                   ``sum_h attn.hook_result[h] + b_O = attn_out`` (in Gemma 2/3: the
                            attention module's output, before the norm that makes ``attn_out``)
``mlp``                     ``W_out(mlp.hook_post) = mlp_out`` (where the MLP has ``hook_post``;
                            in Gemma 2/3 the MLP module's output, before its norm)
``logits``                  ``unembed(final_norm(resid_post[L - 1])) = logits``
==========================  ====================================================================

They are what every causal tool relies on: the residual stream is the sum of its
components (direct logit attribution, patching), the heads' results are the attention
output, and the final norm and unembedding applied to a residual are the logits (the logit
lens). A family table that points at the wrong module (above all a row found by
:func:`iclab.models.families.guess_family`) breaks one of them; so does a family that adds
something the names leave out (a residual multiplier, logit softcapping, a scaled
embedding). :func:`check_identities` names the first identity and layer that fails, in one
line; :func:`iclab.models.load.load_model` runs it on every model whose family was guessed,
and on any model with ``check=True``.

Cost: one forward pass of ``n_tokens`` (default 6) tokens with every layer's residual,
attention, MLP and per-head outputs kept, then a few sums. Measured on this project's
shared CPU (one thread): a few milliseconds for the tiny test models; about 0.5 s for a
randomly initialised GPT-2-small (124M), whose bare 6-token forward takes about 0.3 s. The per-head results dominate
the memory: ``layers x 6 x heads x d_model`` values, 50 MB in bfloat16 for a 7B Llama.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from iclab.errors import ModelLoadError
from iclab.models.capture import capture
from iclab.models.hooks import anatomy, backbone, head_weights, model_names
from iclab.models.names import act_name
from iclab.models.placement import execution_device

#: relative tolerance by parameter dtype: the largest error allowed, as a share of the
#: largest magnitude of the compared activation (plus 1e-6 absolute)
RTOL = {torch.float32: 1e-4, torch.float64: 1e-8, torch.float16: 2e-2, torch.bfloat16: 4e-2}


@dataclass(frozen=True)
class Failure:
    """One identity that does not hold: its name, the layer (None for global ones), the
    largest absolute error and the largest magnitude it was measured against."""

    identity: str
    equation: str
    layer: int | None
    error: float
    magnitude: float

    def message(self, model: nn.Module) -> str:
        fam = anatomy(model).family
        where = f" at layer {self.layer}" if self.layer is not None else ""
        model_type = getattr(backbone(model).config, "model_type", "?")
        origin = "guessed" if fam.guessed else "read from the family table"
        return (f"identity check failed{where}: {self.identity} ({self.equation}) is off by {self.error:.3g} on values "
                f"up to {self.magnitude:.3g}; the module paths for model_type {model_type!r} ({origin}) may point at "
                f"the wrong modules, or this family adds something iclab's names leave out; pass check=False to "
                f"load it anyway")


def _compare(identity: str, equation: str, layer: int | None, got: torch.Tensor, want: torch.Tensor,
             rtol: float) -> Failure | None:
    got, want = got.float(), want.float()
    if got.shape != want.shape:
        return Failure(identity, f"{equation}; shapes {tuple(got.shape)} and {tuple(want.shape)}", layer,
                       float("inf"), float(want.abs().max()))
    err = float((got - want).abs().max())
    mag = float(want.abs().max())
    return Failure(identity, equation, layer, err, mag) if not err <= rtol * mag + 1e-6 else None


@torch.no_grad()
def identity_failures(model: nn.Module, n_tokens: int = 6) -> list[Failure]:
    """Every identity of the module docstring that fails on ``n_tokens`` fixed tokens."""
    lm = backbone(model)
    a = anatomy(model)
    p = next(lm.parameters())
    rtol = RTOL.get(p.dtype, 1e-4)
    vocab = int(getattr(lm.config, "vocab_size", 0) or a.embed.weight.shape[0])
    ids = (torch.arange(1, n_tokens + 1) * 7919 % vocab)[None]  # (1, n_tokens), spread over the vocabulary
    ids = ids.to(execution_device(model))
    names = set(model_names(model))
    want = ["hook_embed", "hook_pos_embed"] + [act_name(s, l) for l in range(a.n_layers) for s in
                                               ("resid_pre", "attn_out", "mlp_out", "resid_post", "result", "mlp_post")]
    raw: dict[tuple[str, int], torch.Tensor] = {}  # attention and MLP modules' own outputs, where a norm follows

    def keep(key):
        return lambda mod, args, out: raw.__setitem__(key, out[0] if isinstance(out, tuple) else out)
    handles = []
    for l in range(a.n_layers):
        if a.family.attn_out_norm is not None:
            handles.append(a.attn(l).register_forward_hook(keep(("attn", l))))
        if a.family.mlp_out_norm is not None:
            handles.append(a.mlp(l).register_forward_hook(keep(("mlp", l))))
    try:
        cache = capture(model, ids, [n for n in want if n in names])
    finally:
        for h in handles:
            h.remove()
    fails: list[Failure] = []

    def check(*args):
        f = _compare(*args, rtol)
        if f is not None:
            fails.append(f)

    embed = cache["hook_embed"] + (cache["hook_pos_embed"] if "hook_pos_embed" in cache else 0)
    check("embed", "hook_embed + hook_pos_embed = resid_pre" if "hook_pos_embed" in cache else
          "hook_embed = resid_pre", 0, embed, cache[act_name("resid_pre", 0)])
    for l in range(a.n_layers):
        get = lambda s: cache[act_name(s, l)]  # noqa: E731
        check("residual", "resid_pre + attn_out + mlp_out = resid_post", l,
              get("resid_pre") + get("attn_out") + get("mlp_out"), get("resid_post"))
        if l + 1 < a.n_layers:
            check("chain", "resid_post = next layer's resid_pre", l, get("resid_post"),
                  cache[act_name("resid_pre", l + 1)])
        _, b_o = head_weights(a.o_proj(l), a.n_heads)
        check("heads", "sum of attn.hook_result + output bias = attn_out", l, get("result").sum(2) + b_o,
              raw.get(("attn", l), get("attn_out")))
        if act_name("mlp_post", l) in cache:
            check("mlp", "MLP output projection of mlp.hook_post = mlp_out", l, a.down(l)(get("mlp_post")),
                  raw.get(("mlp", l), get("mlp_out")))
    last = cache[act_name("resid_post", a.n_layers - 1)]
    check("logits", "unembed(final_norm(last resid_post)) = logits", None, a.unembed(a.final_norm(last)),
          cache.logits)
    return fails


def check_identities(model: nn.Module, n_tokens: int = 6) -> None:
    """Raise :class:`ModelLoadError` naming the first identity (module docstring) that fails,
    and the layer; a model that passes is marked, so tools that need the identities
    (:func:`require_identities`) do not check it again."""
    try:
        fails = identity_failures(model, n_tokens)
    except ModelLoadError:
        raise
    except Exception as e:  # a hook that never fired, a module of the wrong shape: the table is wrong
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"identity check could not run: {reason}; pass check=False to load it anyway") from e
    if fails:
        raise ModelLoadError(fails[0].message(model))
    object.__setattr__(backbone(model), "_iclab_identities_ok", True)


def require_identities(model: nn.Module) -> None:
    """:func:`check_identities` once per model (tools whose numbers rest on the identities call it)."""
    if not getattr(backbone(model), "_iclab_identities_ok", False):
        check_identities(model)
