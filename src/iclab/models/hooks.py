"""Scoped hooks on the HF modules as loaded, addressed by activation name.

Everything that reads or writes an activation goes through :func:`hooks`: it attaches
one function per name (see :mod:`iclab.models.names`) to the module that produces it,
and removes every handle in a ``finally``, so no hook outlives its ``with`` block.

A hook function is ``fn(act) -> Tensor | None``. ``act`` has the shape the name
documents; returning a tensor of that shape replaces the activation, returning None
leaves it alone. The hook sees ``(batch, pos, head, d_head)`` for ``z`` even though the
module holds it flattened: reshaping is done here, once, for every architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from iclab.errors import ConfigError
from iclab.models.families import Family, family_of, get_module
from iclab.models.names import READ_ONLY, ParsedName, parse_name

HookFn = Callable[[torch.Tensor], torch.Tensor | None]


def backbone(model: nn.Module) -> nn.Module:
    """The HF causal LM inside ``model``: itself, or a wrapper's ``.backbone`` (e.g. a
    read-in/read-out model for vector worlds)."""
    return getattr(model, "backbone", model)


@dataclass(frozen=True)
class Anatomy:
    """The modules of one model that hooks attach to, resolved once from its Family."""

    family: Family
    embed: nn.Module
    final_norm: nn.Module
    unembed: nn.Module
    layers: nn.ModuleList
    n_heads: int

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
        return None if self.family.ln_mid is None else get_module(self.layers[layer], self.family.ln_mid)


def anatomy(model: nn.Module) -> Anatomy:
    """Resolve (and cache on the model) the modules that activation names point to."""
    lm = backbone(model)
    cached = getattr(lm, "_iclab_anatomy", None)
    if cached is not None:
        return cached
    fam = family_of(lm)
    cfg = lm.config
    n_heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None)
    a = Anatomy(fam, get_module(lm, fam.embed), get_module(lm, fam.final_norm), get_module(lm, fam.unembed),
                get_module(lm, fam.layers), int(n_heads))
    object.__setattr__(lm, "_iclab_anatomy", a)  # plain attribute: not a submodule, not saved
    return a


def _check_layer(a: Anatomy, site: ParsedName, name: str) -> None:
    if site.layer is not None and not 0 <= site.layer < a.n_layers:
        raise ConfigError(f"activation {name!r}: layer {site.layer} out of range; model has layers 0..{a.n_layers - 1}")


def _first_tensor(x):
    return x[0] if isinstance(x, tuple) else x


def _replace_first(out, new):
    return (new, *out[1:]) if isinstance(out, tuple) else new


def _attach(model: nn.Module, name: str, fn: HookFn, writable: bool):
    a = anatomy(model)
    site = parse_name(name)
    _check_layer(a, site, name)
    if writable and site.site in READ_ONLY:
        raise ConfigError(f"activation {name!r} can be captured but not patched")
    s, layer = site.site, site.layer

    def on_output(mod, args, out):
        new = fn(_first_tensor(out))
        return None if new is None else _replace_first(out, new)

    if s == "embed":
        return a.embed.register_forward_hook(on_output)
    if s == "normalized":
        return a.final_norm.register_forward_hook(on_output)
    if s == "resid_post":
        return a.layers[layer].register_forward_hook(on_output)
    if s == "attn_out":
        return a.attn(layer).register_forward_hook(on_output)
    if s == "mlp_out":
        return a.mlp(layer).register_forward_hook(on_output)
    if s == "pattern":
        def on_pattern(mod, args, out):
            weights = out[1] if isinstance(out, tuple) and len(out) > 1 else None
            if weights is None:
                raise RuntimeError(f"{name}: the attention module returned no weights; "
                                   f"attention patterns need eager attention (capture switches to it)")
            fn(weights)
        return a.attn(layer).register_forward_hook(on_pattern)
    if s == "resid_pre":
        def on_layer_input(mod, args, kwargs):
            if args:
                new = fn(args[0])
                return None if new is None else ((new, *args[1:]), kwargs)
            new = fn(kwargs["hidden_states"])
            return None if new is None else (args, {**kwargs, "hidden_states": new})
        return a.layers[layer].register_forward_pre_hook(on_layer_input, with_kwargs=True)
    if s == "resid_mid":
        ln = a.ln_mid(layer)
        if ln is None:
            raise ConfigError(f"activation {name!r}: this model has parallel attention and MLP, so no resid_mid")

        def on_mid(mod, args):
            fn(args[0])
        return ln.register_forward_pre_hook(on_mid)
    if s == "z":
        n_heads = a.n_heads

        def on_z(mod, args):
            flat = args[0]  # (batch, pos, head * d_head)
            z = flat.unflatten(-1, (n_heads, -1))  # (batch, pos, head, d_head)
            new = fn(z)
            return None if new is None else (new.flatten(-2), *args[1:])
        return a.o_proj(layer).register_forward_pre_hook(on_z)
    raise AssertionError(f"unhandled site {s}")


@contextmanager
def hooks(model: nn.Module, fns: dict[str, HookFn], read_only: frozenset[str] | set[str] = frozenset()
          ) -> Iterator[None]:
    """Attach ``fns`` (activation name → hook function) for the duration of the block.

    Names in ``read_only`` are only read (capture); the others may write, and a
    capture-only site (``pattern``, ``resid_mid``) among them is refused. Every handle is
    removed on exit, also when the block raises.
    """
    handles = []
    try:
        for name, fn in fns.items():
            handles.append(_attach(model, name, fn, writable=name not in read_only))
        yield
    finally:
        for h in handles:
            h.remove()


def hook_count(model: nn.Module) -> int:
    """Number of forward hooks currently attached anywhere in ``model`` (tests use it)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@contextmanager
def eager_attention(model: nn.Module, needed: bool = True) -> Iterator[None]:
    """Switch the model to eager attention inside the block when ``needed``.

    SDPA and flash attention silently return no weights, so attention patterns can only
    be read from the eager implementation; the original implementation is restored after.
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
