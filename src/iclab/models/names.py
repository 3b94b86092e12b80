"""The one vocabulary of activation names, shared by capture and patching.

Names follow the module tree the way TransformerLens does, with 0-based layers:

=================================  =============================  ==========
name                               shape                          patchable
=================================  =============================  ==========
``hook_embed``                     (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_pre``      (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_mid``      (batch, pos, d_model)          no
``blocks.{l}.hook_attn_out``       (batch, pos, d_model)          yes
``blocks.{l}.hook_mlp_out``        (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_post``     (batch, pos, d_model)          yes
``blocks.{l}.attn.hook_pattern``   (batch, head, query, key)      no
``blocks.{l}.attn.hook_z``         (batch, pos, head, d_head)     yes
``ln_final.hook_normalized``       (batch, pos, d_model)          yes
=================================  =============================  ==========

``resid_post`` is the layer's output, before the final norm (HF's ``hidden_states[-1]``
is after it). ``hook_embed`` is the token embedding alone (GPT-2's position embedding
is added after it). ``resid_mid`` (the residual between attention and MLP) and the
attention ``pattern`` are read where the model exposes them but cannot be written:
the model has already used its own copy by then. Only this module builds names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from iclab.errors import ConfigError

LAYER_SITES: dict[str, str] = {
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
    "resid_post": "hook_resid_post",
    "pattern": "attn.hook_pattern",
    "z": "attn.hook_z",
}
GLOBAL_SITES: dict[str, str] = {"embed": "hook_embed", "normalized": "ln_final.hook_normalized"}
READ_ONLY: frozenset[str] = frozenset({"resid_mid", "pattern"})

#: The per-layer sites whose activation is (batch, pos, d_model): what probes that read a
#: residual-stream-like vector (task decodability, graph tracing, task vectors) accept.
StreamSite = Literal["resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post"]

_LAYER_RE = re.compile(r"^blocks\.(0|[1-9][0-9]*)\.(" + "|".join(re.escape(v) for v in LAYER_SITES.values()) + r")$")
_BY_SUFFIX = {v: k for k, v in LAYER_SITES.items()}
_GLOBAL_BY_NAME = {v: k for k, v in GLOBAL_SITES.items()}


@dataclass(frozen=True)
class ParsedName:
    """An activation name taken apart: ``site`` is a key of LAYER_SITES or GLOBAL_SITES."""

    site: str
    layer: int | None = None

    @property
    def name(self) -> str:
        return act_name(self.site, self.layer)


def act_name(site: str, layer: int | None = None) -> str:
    """The activation name of ``site`` at ``layer``: ``act_name("resid_post", 3)`` is
    ``"blocks.3.hook_resid_post"``; ``act_name("embed")`` is ``"hook_embed"``."""
    if site in GLOBAL_SITES:
        if layer is not None:
            raise ConfigError(f"site {site!r} has no layer (got layer={layer})")
        return GLOBAL_SITES[site]
    if site in LAYER_SITES:
        if layer is None or layer < 0:
            raise ConfigError(f"site {site!r} needs a layer >= 0 (got {layer})")
        return f"blocks.{layer}.{LAYER_SITES[site]}"
    raise ConfigError(f"unknown activation site {site!r}; known: {', '.join([*GLOBAL_SITES, *LAYER_SITES])}")


def parse_name(name: str) -> ParsedName:
    """Inverse of :func:`act_name`; raises ConfigError listing the forms allowed."""
    if name in _GLOBAL_BY_NAME:
        return ParsedName(_GLOBAL_BY_NAME[name])
    m = _LAYER_RE.match(name)
    if m is None:
        raise ConfigError(
            f"unknown activation name {name!r}; allowed: hook_embed, ln_final.hook_normalized, "
            f"blocks.{{l}}.{{{', '.join(LAYER_SITES.values())}}}")
    return ParsedName(_BY_SUFFIX[m.group(2)], int(m.group(1)))


def all_names(n_layers: int) -> list[str]:
    """Every activation name of a model with ``n_layers`` layers, in forward order."""
    names = [GLOBAL_SITES["embed"]]
    order = ["resid_pre", "pattern", "z", "attn_out", "resid_mid", "mlp_out", "resid_post"]
    for layer in range(n_layers):
        names += [act_name(s, layer) for s in order]
    return names + [GLOBAL_SITES["normalized"]]
