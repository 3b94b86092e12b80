"""Scoped hooks on the HF modules as loaded, addressed by activation name.

Everything that reads or writes an activation goes through :func:`hooks`: it attaches
one function per name (see :mod:`iclab.models.names`) to the module that produces it,
and removes every handle in a ``finally``, so no hook outlives its ``with`` block.

A hook function is ``fn(act) -> Tensor | None``. ``act`` has the shape the name
documents; returning a tensor of that shape replaces the activation, returning None
leaves it alone. The hook sees ``(batch, pos, head, d_head)`` for ``z`` even though the
module holds it flattened: reshaping is done here, once, for every architecture.

Most sites are a PyTorch hook on one module (a layer's input or output, the input of
the output projection, of the MLP's activation function...). The sites inside attention
(``q``, ``k``, ``v``, ``pattern``) are not any module's input or output: for them the
model runs, inside the block, on ``iclab_sdpa`` or ``iclab_eager``, two functions
registered in HF's ``AttentionInterface`` that call the model's own SDPA or eager
attention with the hooks applied to its arguments and its weights. A model on SDPA stays
on SDPA when patterns are read: the requested layers' patterns are computed from the same
queries and keys (:mod:`iclab.models.patterns`), and only a layer whose weights SDPA would
not reproduce (softcapping, sinks) runs the family's eager attention. A model on eager
stays on eager, and any other implementation (flash, flex) is switched to eager. The
model's implementation is restored on exit.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from iclab.errors import ConfigError
from iclab.models.families import Family, family_of, get_module
from iclab.models.names import ATTENTION_SITES, LAYER_SITES, READ_ONLY, ParsedName, act_name, parse_name
from iclab.models.norms import norm_kind, norm_scale
from iclab.models.patterns import additive_mask, pattern_from_qk, sdpa_exact
from iclab.models.placement import execution_device, module_tensor

HookFn = Callable[[torch.Tensor], torch.Tensor | None]


def backbone(model: nn.Module) -> nn.Module:
    """The HF causal LM inside ``model``: itself, or a wrapper's ``.backbone`` (e.g. a
    read-in/read-out model for vector worlds)."""
    return getattr(model, "backbone", model)


def _optional(root: nn.Module, path: str | None) -> nn.Module | None:
    if path is None:
        return None
    try:
        return get_module(root, path)
    except AttributeError:
        return None


@dataclass(frozen=True)
class Anatomy:
    """The modules of one model that hooks attach to, resolved once from its Family.

    ``pos_embed`` is None without learned positions; ``ln_attn``, ``act``, ``down`` and
    ``ln_mid`` return None for a layer that has no such module.
    """

    family: Family
    embed: nn.Module
    final_norm: nn.Module
    unembed: nn.Module
    layers: nn.ModuleList
    n_heads: int
    n_kv_heads: int
    pos_embed: nn.Module | None = None

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def attn(self, layer: int) -> nn.Module:
        return get_module(self.layers[layer], self.family.attn)

    def mlp(self, layer: int) -> nn.Module:
        return get_module(self.layers[layer], self.family.mlp)

    def o_proj(self, layer: int) -> nn.Module:
        return get_module(self.attn(layer), self.family.o_proj)

    def ln_mid(self, layer: int) -> nn.Module | None:
        return _optional(self.layers[layer], self.family.ln_mid)

    def ln_attn(self, layer: int) -> nn.Module | None:
        return _optional(self.layers[layer], self.family.ln_attn)

    def act(self, layer: int) -> nn.Module | None:
        return _optional(self.mlp(layer), self.family.act)

    def down(self, layer: int) -> nn.Module | None:
        return _optional(self.mlp(layer), self.family.down)

    def attn_out_module(self, layer: int) -> nn.Module:
        """The module whose output is ``attn_out``: the attention, or the norm after it."""
        return _optional(self.layers[layer], self.family.attn_out_norm) or self.attn(layer)

    def mlp_out_module(self, layer: int) -> nn.Module:
        """The module whose output is ``mlp_out``: the MLP, or the norm after it."""
        return _optional(self.layers[layer], self.family.mlp_out_norm) or self.mlp(layer)


def anatomy(model: nn.Module) -> Anatomy:
    """Resolve (and cache on the model) the modules that activation names point to."""
    lm = backbone(model)
    cached = getattr(lm, "_iclab_anatomy", None)
    if cached is not None:
        return cached
    fam = family_of(lm)
    cfg = lm.config
    n_heads = int(getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None))
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    a = Anatomy(fam, get_module(lm, fam.embed), get_module(lm, fam.final_norm), get_module(lm, fam.unembed),
                get_module(lm, fam.layers), n_heads, n_kv, _optional(lm, fam.pos_embed))
    object.__setattr__(lm, "_iclab_anatomy", a)  # plain attribute: not a submodule, not saved
    return a


def _has_scale(norm: nn.Module | None) -> bool:
    if norm is None:
        return False
    try:
        norm_kind(norm)
        return True
    except ConfigError:
        return False


def _site_exists(a: Anatomy, site: str, layer: int | None) -> bool:
    """Whether this model has ``site`` (at ``layer``)."""
    if site == "pos_embed":
        return a.pos_embed is not None
    if site == "scale":
        return _has_scale(a.final_norm)
    if site == "ln1_scale":
        return _has_scale(a.ln_attn(layer))
    if site in ("resid_mid", "ln2_scale"):
        ln = a.ln_mid(layer)
        return ln is not None and (site == "resid_mid" or _has_scale(ln))
    if site == "mlp_pre":
        return a.act(layer) is not None
    if site == "mlp_post":
        return a.down(layer) is not None
    return True


def model_names(model: nn.Module) -> list[str]:
    """The activation names ``model`` has, in forward order: :func:`iclab.models.names.all_names`
    less the sites its family lacks (``hook_pos_embed`` without learned positions,
    ``resid_mid`` and ``ln2.hook_scale`` with parallel attention, ``mlp.hook_pre``/``hook_post``
    in a mixture of experts)."""
    a = anatomy(model)
    out = [act_name(s) for s in ("embed", "pos_embed") if _site_exists(a, s, None)]
    for layer in range(a.n_layers):
        out += [act_name(s, layer) for s in LAYER_SITES if _site_exists(a, s, layer)]
    return out + [act_name(s) for s in ("scale", "normalized") if _site_exists(a, s, None)]


def _check_layer(a: Anatomy, site: ParsedName, name: str) -> None:
    if site.layer is not None and not 0 <= site.layer < a.n_layers:
        raise ConfigError(f"activation {name!r}: layer {site.layer} out of range; model has layers 0..{a.n_layers - 1}")


def _first_tensor(x):
    return x[0] if isinstance(x, tuple) else x


def _replace_first(out, new):
    return (new, *out[1:]) if isinstance(out, tuple) else new


_MISSING = {
    "pos_embed": "this model has no learned position embedding (rotary or no positions)",
    "resid_mid": "this model has parallel attention and MLP, so no resid_mid",
    "ln2_scale": "this model has parallel attention and MLP, so no norm reads resid_mid",
    "ln1_scale": "no LayerNorm or RMSNorm found before this layer's attention",
    "scale": "the final norm is neither a LayerNorm nor an RMSNorm",
    "mlp_pre": "no activation-function module found in this layer's MLP (a mixture of experts?)",
    "mlp_post": "no output projection found in this layer's MLP (a mixture of experts?)",
}


# ---------------------------------------------------------------- per-head output weights


def head_weights(o_proj: nn.Module, n_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The output projection as per-head matrices: ``W_O`` (head, d_head, d_model) and the
    bias ``b_O`` (d_model,), so that ``o_proj(z) = sum_h z[h] @ W_O[h] + b_O``.

    Read from the weight of an ``nn.Linear`` (out, in) or a GPT-2 ``Conv1D`` (in, out);
    any other (linear) module is measured by calling it on the identity.
    """
    weight, bias = module_tensor(o_proj, "weight"), module_tensor(o_proj, "bias")  # offloaded ones too
    if isinstance(o_proj, nn.Linear):
        w = weight.t()  # (head * d_head, d_model)
    elif type(o_proj).__name__ == "Conv1D" and weight is not None and weight.ndim == 2:
        w = weight  # (head * d_head, d_model)
    else:
        with torch.no_grad():
            p, dev = next(o_proj.parameters()), execution_device(o_proj)
            d_in = getattr(o_proj, "in_features", None) or p.shape[-1]
            zero = o_proj(torch.zeros(1, d_in, dtype=p.dtype, device=dev))[0]  # (d_model,)
            w = o_proj(torch.eye(d_in, dtype=p.dtype, device=dev)) - zero  # (head * d_head, d_model)
            bias = zero
    if bias is None:
        bias = torch.zeros(w.shape[1], dtype=w.dtype, device=w.device)
    return w.unflatten(0, (n_heads, -1)), bias  # (head, d_head, d_model), (d_model,)


# ---------------------------------------------------------------- inside attention


class _AttentionHook:
    """A hook on a site inside attention, kept on the attention module until removed."""

    def __init__(self, module: nn.Module, site: str, fn: HookFn):
        self.module, self.site, self.fn = module, site, fn
        table = module.__dict__.setdefault("_iclab_attn_hooks", {})
        table.setdefault(site, []).append(fn)

    def remove(self) -> None:
        table = self.module.__dict__.get("_iclab_attn_hooks", {})
        fns = table.get(self.site, [])
        if self.fn in fns:
            fns.remove(self.fn)
        if not fns:
            table.pop(self.site, None)
        if not table:
            self.module.__dict__.pop("_iclab_attn_hooks", None)


def _run_heads(fns: list[HookFn], x: torch.Tensor) -> torch.Tensor:
    """Apply hook functions to a (batch, head, pos, d_head) tensor, which they see as
    (batch, pos, head, d_head)."""
    for fn in fns:
        new = fn(x.transpose(1, 2))  # (batch, pos, head, d_head)
        if new is not None:
            x = new.transpose(1, 2)  # (batch, head, pos, d_head)
    return x


def _inner_attention(module: nn.Module, inner: str) -> Callable:
    if inner == "sdpa":
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        return ALL_ATTENTION_FUNCTIONS["sdpa"]
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is None:
        raise ConfigError(f"{type(module).__name__} has no eager_attention_forward in its module: iclab cannot read "
                          f"q, k, v or the pattern of this family")
    return fn


def _hooked_attention(inner: str) -> Callable:
    """An attention function for HF's AttentionInterface: the model's own ``inner`` attention
    with the q/k/v hooks applied to its arguments and the pattern hooks to its weights."""

    def attend(module, query, key, value, attention_mask, *args, **kwargs):
        table = module.__dict__.get("_iclab_attn_hooks") or {}
        if table.get("q"):
            query = _run_heads(table["q"], query)  # (batch, head, pos, d_head)
        if table.get("k"):
            key = _run_heads(table["k"], key)  # (batch, kv_head, pos, d_head)
        if table.get("v"):
            value = _run_heads(table["v"], value)  # (batch, kv_head, pos, d_head)
        if table.get("pattern") and inner == "sdpa" and not sdpa_exact(module, kwargs):
            # this layer alone on the family's eager attention, with SDPA's mask made additive
            mask = additive_mask(module, attention_mask, query.shape[2], key.shape[2], query.dtype, query.device,
                                 kwargs.get("is_causal"))
            out, weights = _inner_attention(module, "eager")(module, query, key, value, mask, *args, **kwargs)
        else:
            out, weights = _inner_attention(module, inner)(module, query, key, value, attention_mask, *args, **kwargs)
        if table.get("pattern"):
            if weights is None:  # SDPA: the pattern from the same q and k, the forward untouched
                weights = pattern_from_qk(module, query, key, attention_mask, *args, **kwargs)
            changed = False
            for fn in table["pattern"]:
                new = fn(weights)  # (batch, head, query, key)
                if new is not None:
                    weights, changed = new, True
            if changed:  # the heads' output from the new pattern: z = pattern @ v
                group = query.shape[1] // value.shape[1]
                v = value.repeat_interleave(group, dim=1) if group > 1 else value  # (batch, head, key, d_head)
                out = torch.matmul(weights.to(v.dtype), v).transpose(1, 2).contiguous()  # (batch, query, head, d_head)
        return out, weights

    return attend


_REGISTERED = False


def _register_attention() -> None:
    """Register ``iclab_eager`` and ``iclab_sdpa`` (and their masks, those of eager and SDPA)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

    AttentionInterface.register("iclab_eager", _hooked_attention("eager"))
    AttentionMaskInterface.register("iclab_eager", eager_mask)
    AttentionInterface.register("iclab_sdpa", _hooked_attention("sdpa"))
    AttentionMaskInterface.register("iclab_sdpa", sdpa_mask)
    _REGISTERED = True


@contextmanager
def _attention_implementation(model: nn.Module, sites: set[str]) -> Iterator[None]:
    """Run the model on iclab's attention inside the block when ``sites`` include a site
    inside attention: the wrapper of the model's own SDPA (so that reading q, k, v or a
    pattern does not change a single logit) or of eager."""
    needed = sites & ATTENTION_SITES
    lm = backbone(model)
    before = getattr(lm.config, "_attn_implementation", None)
    if not needed:
        yield
        return
    # SDPA stays SDPA, patterns included (computed from q and k: iclab.models.patterns); eager
    # stays eager; any other implementation (flash, flex) becomes eager
    target = "iclab_sdpa" if before in ("sdpa", "iclab_sdpa") else "iclab_eager"
    if before == target or before == "iclab_eager":  # already wrapped (a block inside another)
        yield
        return
    _register_attention()
    lm.set_attn_implementation(target)
    try:
        yield
    finally:
        lm.set_attn_implementation(before)


# ---------------------------------------------------------------- attaching


class _Handles:
    """Several hook handles removed as one."""

    def __init__(self, handles):
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _pre_hook_on_input(module: nn.Module, fn: HookFn, read_only: bool = False):
    """A forward pre-hook that shows ``fn`` the module's first input (and replaces it)."""

    def on_input(mod, args, kwargs):
        if args:
            new = fn(args[0])
            return None if new is None or read_only else ((new, *args[1:]), kwargs)
        new = fn(kwargs["hidden_states"])
        return None if new is None or read_only else (args, {**kwargs, "hidden_states": new})
    return module.register_forward_pre_hook(on_input, with_kwargs=True)


def _attach(model: nn.Module, name: str, fn: HookFn, writable: bool):
    a = anatomy(model)
    site = parse_name(name)
    _check_layer(a, site, name)
    if writable and site.site in READ_ONLY:
        raise ConfigError(f"activation {name!r} can be captured but not patched")
    s, layer = site.site, site.layer
    if not _site_exists(a, s, layer):
        raise ConfigError(f"activation {name!r}: {_MISSING[s]}")

    def on_output(mod, args, out):
        new = fn(_first_tensor(out))
        return None if new is None else _replace_first(out, new)

    def on_scale(x):
        fn(norm_scale(norm, x).to(x.dtype))  # (batch, pos, 1)

    if s == "embed":
        return a.embed.register_forward_hook(on_output)
    if s == "pos_embed":  # computed once for the batch, (1, pos, d_model): shown as (batch, pos, d_model)
        batch = {}

        def on_model_input(mod, args, kwargs):
            x = args[0] if args else kwargs.get("input_ids")
            x = kwargs.get("inputs_embeds") if x is None else x
            batch["n"] = x.shape[0] if x is not None else 1

        def on_pos(mod, args, out):
            new = fn(out.expand(batch.get("n", out.shape[0]), *out.shape[1:]))
            return None if new is None else new
        return _Handles([backbone(model).register_forward_pre_hook(on_model_input, with_kwargs=True),
                         a.pos_embed.register_forward_hook(on_pos)])
    if s == "normalized":
        return a.final_norm.register_forward_hook(on_output)
    if s == "resid_post":
        return a.layers[layer].register_forward_hook(on_output)
    if s == "attn_out":
        return a.attn_out_module(layer).register_forward_hook(on_output)
    if s == "mlp_out":
        return a.mlp_out_module(layer).register_forward_hook(on_output)
    if s in ATTENTION_SITES:
        return _AttentionHook(a.attn(layer), s, fn)
    if s == "resid_pre":
        return _pre_hook_on_input(a.layers[layer], fn)
    if s == "mlp_pre":
        return _pre_hook_on_input(a.act(layer), fn)
    if s == "mlp_post":
        return _pre_hook_on_input(a.down(layer), fn)
    if s == "resid_mid":
        return _pre_hook_on_input(a.ln_mid(layer), fn, read_only=True)
    if s in ("ln1_scale", "ln2_scale", "scale"):
        norm = {"ln1_scale": a.ln_attn, "ln2_scale": a.ln_mid}[s](layer) if s != "scale" else a.final_norm
        return _pre_hook_on_input(norm, on_scale, read_only=True)
    if s == "z":
        n_heads = a.n_heads

        def on_z(mod, args):
            flat = args[0]  # (batch, pos, head * d_head)
            z = flat.unflatten(-1, (n_heads, -1))  # (batch, pos, head, d_head)
            new = fn(z)
            return None if new is None else (new.flatten(-2), *args[1:])
        return a.o_proj(layer).register_forward_pre_hook(on_z)
    if s == "result":
        n_heads = a.n_heads

        def on_result(mod, args, out):
            w, b = head_weights(mod, n_heads)  # (head, d_head, d_model), (d_model,)
            z = args[0].unflatten(-1, (n_heads, -1))  # (batch, pos, head, d_head)
            result = torch.einsum("bphd,hdm->bphm", z, w.to(z.device, z.dtype))  # (batch, pos, head, d_model)
            new = fn(result)
            return None if new is None else new.sum(2) + b.to(new.device, new.dtype)  # (batch, pos, d_model)
        return a.o_proj(layer).register_forward_hook(on_result)
    raise AssertionError(f"unhandled site {s}")


@contextmanager
def hooks(model: nn.Module, fns: dict[str, HookFn], read_only: frozenset[str] | set[str] = frozenset()
          ) -> Iterator[None]:
    """Attach ``fns`` (activation name → hook function) for the duration of the block.

    Names in ``read_only`` are only read (capture); the others may write, and a
    capture-only site (``resid_mid``, the norms' scales) among them is refused. Sites inside
    attention switch the model to iclab's attention functions for the block (module
    docstring). Every handle is removed, and the attention implementation restored, on
    exit, also when the block raises.
    """
    handles = []
    main = execution_device(model)
    try:
        for name, fn in fns.items():
            writable = name not in read_only
            handles.append(_attach(model, name, _on_device(fn, main, writable), writable=writable))
        sites = {parse_name(n).site for n in fns}
        with _attention_implementation(model, sites):
            yield
    finally:
        for h in handles:
            h.remove()


def _on_device(fn: HookFn, main: torch.device, writable: bool) -> HookFn:
    """``fn`` as it sees every activation on ``main``, the device the model's inputs go to.

    On a model accelerate spread over several GPUs each layer computes on its own device; the
    tools keep what they capture, and build what they write, on the first one. So an activation
    made elsewhere is handed to ``fn`` on ``main``, and what ``fn`` returns (or changed in
    place) goes back to the layer's device. On one device this is ``fn`` itself, called as is.
    """
    def on_main(x: torch.Tensor):
        if x.device == main:
            return fn(x)
        moved = x.to(main)
        new = fn(moved)
        if new is None:
            if writable:  # an edit may have been made in place, on the copy
                x.copy_(moved)
            return None
        return new.to(x.device)
    return on_main


def hook_count(model: nn.Module) -> int:
    """Number of forward hooks currently attached anywhere in ``model``, the hooks on sites
    inside attention included (tests use it)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks)
               + sum(len(v) for v in m.__dict__.get("_iclab_attn_hooks", {}).values()) for m in model.modules())


@contextmanager
def eager_attention(model: nn.Module, needed: bool = True) -> Iterator[None]:
    """Switch the model to eager attention inside the block when ``needed``.

    SDPA and flash attention silently return no weights, so code that asks HF for
    ``output_attentions`` needs the eager implementation; the original is restored after.
    (Capture reads patterns through :func:`hooks`, which switches by itself.)
    """
    lm = backbone(model)
    before = getattr(lm.config, "_attn_implementation", None)
    if not needed or before == "eager":
        yield
        return
    lm.set_attn_implementation("eager")
    try:
        yield
    finally:
        lm.set_attn_implementation(before)
