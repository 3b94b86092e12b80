"""The one vocabulary of activation names, shared by capture and patching.

Names follow the module tree the way TransformerLens does, with 0-based layers:

=================================  =============================  ==========
name                               shape                          patchable
=================================  =============================  ==========
``hook_embed``                     (batch, pos, d_model)          yes
``hook_pos_embed``                 (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_pre``      (batch, pos, d_model)          yes
``blocks.{l}.ln1.hook_scale``      (batch, pos, 1)                no
``blocks.{l}.attn.hook_q``         (batch, pos, head, d_head)     yes
``blocks.{l}.attn.hook_k``         (batch, pos, kv_head, d_head)  yes
``blocks.{l}.attn.hook_v``         (batch, pos, kv_head, d_head)  yes
``blocks.{l}.attn.hook_pattern``   (batch, head, query, key)      yes
``blocks.{l}.attn.hook_z``         (batch, pos, head, d_head)     yes
``blocks.{l}.attn.hook_result``    (batch, pos, head, d_model)    yes
``blocks.{l}.hook_attn_out``       (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_mid``      (batch, pos, d_model)          no
``blocks.{l}.ln2.hook_scale``      (batch, pos, 1)                no
``blocks.{l}.mlp.hook_pre``        (batch, pos, d_mlp)            yes
``blocks.{l}.mlp.hook_post``       (batch, pos, d_mlp)            yes
``blocks.{l}.hook_mlp_out``        (batch, pos, d_model)          yes
``blocks.{l}.hook_resid_post``     (batch, pos, d_model)          yes
``ln_final.hook_scale``            (batch, pos, 1)                no
``ln_final.hook_normalized``       (batch, pos, d_model)          yes
=================================  =============================  ==========

What each name holds, and where it differs from TransformerLens:

- ``hook_embed`` is the token embedding alone; ``hook_pos_embed`` is the learned position
  embedding added to it (GPT-2's ``wpe``), only in families that have one (rotary families
  have none). ``resid_pre`` of layer 0 is their sum.
- ``resid_post`` is the layer's output, before the final norm (HF's ``hidden_states[-1]``
  is after it). ``resid_mid`` is the residual between attention and MLP; parallel-attention
  families (GPT-NeoX) have none.
- ``attn_out`` and ``mlp_out`` are what the block adds to the residual stream: in Gemma 2/3,
  after the norms these families apply to the attention and MLP outputs.
- ``attn.hook_q``, ``hook_k``, ``hook_v`` are what the attention function receives: after
  the projections, any per-head norm (Qwen3's ``q_norm``) and the **rotary embedding**.
  On GPT-2 these are TransformerLens's ``hook_q``/``hook_k``/``hook_v``; on rotary models
  q and k are TransformerLens's ``hook_rot_q``/``hook_rot_k`` (its ``hook_q``/``hook_k``
  there are before the rotation). With grouped-query attention k and v have one entry per
  **KV head** (``kv_head = head / group``); query head ``h`` reads KV head
  ``h // (head / kv_head)``.
- ``attn.hook_pattern`` is the softmax of the scores (after the mask, softcapping and any
  attention sinks). Writing it recomputes the heads' output as ``pattern @ v``.
- ``attn.hook_z`` is each head's ``pattern @ v``, the input of the output projection.
- ``attn.hook_result`` is each head's write to the residual stream, ``z[h] @ W_O[h]``:
  the heads' results sum to the attention output minus the output projection's bias
  (``b_O``, which belongs to no head), which is ``attn_out`` except in Gemma 2/3 (where a
  norm follows). Writing it sets the attention output to ``sum_h result[h] + b_O``.
- ``mlp.hook_pre`` is the input of the MLP's activation function (the gate's
  pre-activation in gated MLPs, TransformerLens's ``hook_pre``), ``mlp.hook_post`` the
  input of its output projection (activation times the up projection in gated MLPs).
  Mixture-of-experts MLPs have neither.
- ``ln1``/``ln2``/``ln_final.hook_scale`` is the divisor of each norm, computed from the
  norm's input: ``sqrt(var(x) + eps)`` for LayerNorm, ``sqrt(mean(x^2) + eps)`` for
  RMSNorm; ``ln2`` is the norm whose input is ``resid_mid``.
- ``ln_final.hook_normalized`` is the final norm's output, **after** its weight and bias
  (TransformerLens's ``ln_final.hook_out``; its ``hook_normalized`` is before them).

The norms' scales and ``resid_mid`` are computed or read where the model exposes them but
cannot be written: the model has already used its own copy by then. Only this module
builds names; ``iclab.models.hooks.model_names(model)`` lists the ones a given model has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from iclab.errors import ConfigError

LAYER_SITES: dict[str, str] = {
    "resid_pre": "hook_resid_pre",
    "ln1_scale": "ln1.hook_scale",
    "q": "attn.hook_q",
    "k": "attn.hook_k",
    "v": "attn.hook_v",
    "pattern": "attn.hook_pattern",
    "z": "attn.hook_z",
    "result": "attn.hook_result",
    "attn_out": "hook_attn_out",
    "resid_mid": "hook_resid_mid",
    "ln2_scale": "ln2.hook_scale",
    "mlp_pre": "mlp.hook_pre",
    "mlp_post": "mlp.hook_post",
    "mlp_out": "hook_mlp_out",
    "resid_post": "hook_resid_post",
}
GLOBAL_SITES: dict[str, str] = {"embed": "hook_embed", "pos_embed": "hook_pos_embed",
                                "scale": "ln_final.hook_scale", "normalized": "ln_final.hook_normalized"}
READ_ONLY: frozenset[str] = frozenset({"resid_mid", "ln1_scale", "ln2_scale", "scale"})
#: sites read inside the attention function (a wrapper around the model's own, see hooks.py)
ATTENTION_SITES: frozenset[str] = frozenset({"q", "k", "v", "pattern"})

#: The per-layer sites whose activation is (batch, pos, d_model): what probes that read a
#: residual-stream-like vector (task decodability, graph tracing, task vectors) accept.
StreamSite = Literal["resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post"]

_LAYER_RE = re.compile(r"^blocks\.(0|[1-9][0-9]*)\.(" + "|".join(re.escape(v) for v in LAYER_SITES.values()) + r")$")
_BY_SUFFIX = {v: k for k, v in LAYER_SITES.items()}
_GLOBAL_BY_NAME = {v: k for k, v in GLOBAL_SITES.items()}
_GLOB_CHARS = frozenset("*?[")

#: what ``capture`` accepts as ``names``: names, glob patterns, or a predicate on names
NamesFilter = str | Iterable[str] | Callable[[str], bool]


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
            f"unknown activation name {name!r}; allowed: {', '.join(GLOBAL_SITES.values())}, "
            f"blocks.{{l}}.{{{', '.join(LAYER_SITES.values())}}}")
    return ParsedName(_BY_SUFFIX[m.group(2)], int(m.group(1)))


def all_names(n_layers: int) -> list[str]:
    """Every activation name of the vocabulary for ``n_layers`` layers, in forward order.

    A given model may lack some (``hook_pos_embed`` without learned positions,
    ``resid_mid`` with parallel attention); ``iclab.models.hooks.model_names`` lists its own.
    """
    names = [GLOBAL_SITES["embed"], GLOBAL_SITES["pos_embed"]]
    for layer in range(n_layers):
        names += [act_name(s, layer) for s in LAYER_SITES]
    return names + [GLOBAL_SITES["scale"], GLOBAL_SITES["normalized"]]


def is_pattern(text: str) -> bool:
    """Whether ``text`` is a glob pattern (``*``, ``?`` or ``[``) rather than one name."""
    return bool(_GLOB_CHARS & set(text))


def select_names(names: NamesFilter, available: list[str]) -> list[str]:
    """The names ``names`` asks for, in the order given (patterns in ``available``'s order).

    ``names`` is one name or glob pattern (``"blocks.*.hook_resid_post"``; ``*`` also
    matches dots), an iterable of names and patterns, or a predicate ``fn(name) -> bool``
    over ``available`` (TransformerLens's ``names_filter``). An exact name is kept as given
    (and checked later against the model); a pattern or predicate that selects nothing is
    refused, listing what was available.
    """
    if callable(names) and not isinstance(names, str):
        chosen = [n for n in available if names(n)]
        if not chosen:
            raise ConfigError(f"the names filter {getattr(names, '__name__', names)!r} selected no activation; "
                              f"available: {', '.join(available)}")
        return chosen
    items = [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"activation names must be strings, got {item!r}")
        if not is_pattern(item):
            out.append(item)
            continue
        matched = [n for n in available if fnmatchcase(n, item)]
        if not matched:
            raise ConfigError(f"the pattern {item!r} matches no activation name of this model; "
                              f"available: {', '.join(available)}")
        out += matched
    return list(dict.fromkeys(out))
