"""Where each decoder family keeps its layers, attention, MLP and norms: data, not code.

A row maps the roles iclab hooks to the module paths of an HF model *as loaded*
(nnsight's rename table). Families not in the table are resolved by
:func:`guess_family`, which looks for the usual names; a model that defeats the guess
gets an error saying which role was not found, so one row fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from iclab.errors import ModelLoadError


@dataclass(frozen=True)
class Family:
    """Module paths of one decoder family.

    ``layers``, ``embed``, ``final_norm`` and ``unembed`` are relative to the model;
    ``attn``, ``mlp`` and ``ln_mid`` (the norm whose *input* is ``resid_mid``) are relative
    to one layer; ``o_proj`` (whose input is the concatenated per-head output ``z``) is
    relative to the attention module. ``ln_mid`` is None for parallel-residual blocks,
    which have no ``resid_mid``.

    ``ln_attn`` is the norm before attention (relative to a layer); ``act`` (the activation
    function module, whose input is ``mlp.hook_pre``) and ``down`` (the output projection,
    whose input is ``mlp.hook_post``) are relative to the MLP; ``pos_embed`` (a learned
    position embedding) is relative to the model. A role the model lacks (positions in a
    rotary family, ``act`` in a mixture of experts) is None or simply not found, and its
    names are left out of :func:`iclab.models.hooks.model_names`. ``attn_out_norm`` and
    ``mlp_out_norm`` (relative to a layer) are the norms some families (Gemma 2/3) apply to
    the attention and MLP outputs before adding them to the residual: ``attn_out`` and
    ``mlp_out`` are then read at these norms' outputs, so that they are what the block adds
    (TransformerLens's meaning). ``guessed`` marks a row
    made by :func:`guess_family`; models loaded through one are checked at load
    (:mod:`iclab.models.identities`).
    """

    layers: str
    embed: str
    final_norm: str
    attn: str
    mlp: str
    o_proj: str
    ln_mid: str | None
    unembed: str = "lm_head"
    ln_attn: str | None = "input_layernorm"
    act: str | None = "act_fn"
    down: str | None = "down_proj"
    pos_embed: str | None = None
    attn_out_norm: str | None = None
    mlp_out_norm: str | None = None
    guessed: bool = False  # found by guess_family, not read from FAMILIES


_LLAMA_LIKE = Family("model.layers", "model.embed_tokens", "model.norm",
                     "self_attn", "mlp", "o_proj", "post_attention_layernorm")
# Gemma 2/3 normalise the attention and MLP outputs before adding them; the pre-MLP norm sees resid_mid.
_GEMMA2_LIKE = Family("model.layers", "model.embed_tokens", "model.norm",
                      "self_attn", "mlp", "o_proj", "pre_feedforward_layernorm",
                      attn_out_norm="post_attention_layernorm", mlp_out_norm="post_feedforward_layernorm")

FAMILIES: dict[str, Family] = {
    "gpt2": Family("transformer.h", "transformer.wte", "transformer.ln_f", "attn", "mlp", "c_proj", "ln_2",
                   ln_attn="ln_1", act="act", down="c_proj", pos_embed="transformer.wpe"),
    "gpt_neox": Family("gpt_neox.layers", "gpt_neox.embed_in", "gpt_neox.final_layer_norm",
                       "attention", "mlp", "dense", None, "lm_head", act="act", down="dense_4h_to_h"),
    "phi3": replace(_LLAMA_LIKE, act="activation_fn"),
    "llama": _LLAMA_LIKE, "mistral": _LLAMA_LIKE, "mixtral": _LLAMA_LIKE, "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE, "gemma": _LLAMA_LIKE, "olmo": _LLAMA_LIKE,
    "granite": _LLAMA_LIKE, "smollm3": _LLAMA_LIKE,
    "gemma2": _GEMMA2_LIKE, "gemma3_text": _GEMMA2_LIKE,
}

_CANDIDATES = {
    "layers": ["model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers", "transformer.layers"],
    "embed": ["model.embed_tokens", "transformer.wte", "gpt_neox.embed_in", "model.decoder.embed_tokens",
              "transformer.word_embeddings", "transformer.embed_tokens"],
    "final_norm": ["model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm",
                   "transformer.norm", "model.final_layernorm"],
    "attn": ["self_attn", "attn", "attention", "self_attention"],
    "mlp": ["mlp", "feed_forward", "block_sparse_moe"],
    "o_proj": ["o_proj", "c_proj", "dense", "out_proj"],
    "ln_mid": ["post_attention_layernorm", "ln_2", "final_layer_norm"],
    "unembed": ["lm_head", "embed_out"],
    "ln_attn": ["input_layernorm", "ln_1", "ln1", "self_attn_layer_norm", "attention_norm"],
    "act": ["act_fn", "act", "activation_fn", "activation"],
    "down": ["down_proj", "c_proj", "dense_4h_to_h", "fc2", "fc_out", "w2"],
    "pos_embed": ["transformer.wpe", "model.decoder.embed_positions", "transformer.position_embeddings"],
}


def get_module(root: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path`` (``"model.layers"``); raises AttributeError."""
    mod = root
    for part in path.split("."):
        mod = getattr(mod, part)
    return mod


def _first(root: nn.Module, paths: list[str]) -> str | None:
    for p in paths:
        try:
            get_module(root, p)
            return p
        except AttributeError:
            continue
    return None


def guess_family(model: nn.Module) -> Family:
    """Find the roles by their usual names on a model whose family is not in FAMILIES."""
    found = {role: _first(model, _CANDIDATES[role]) for role in ("layers", "embed", "final_norm", "unembed")}
    missing = [r for r, p in found.items() if p is None]
    if missing:
        raise ModelLoadError(f"cannot find {', '.join(missing)} in {type(model).__name__}; "
                             f"add a row for its model_type to iclab.models.families.FAMILIES")
    layer0 = get_module(model, found["layers"])[0]
    for role in ("attn", "mlp"):
        found[role] = _first(layer0, _CANDIDATES[role])
    if found["attn"] is None or found["mlp"] is None:
        raise ModelLoadError(f"cannot find the attention or MLP module in {type(layer0).__name__}; "
                             f"add a row to iclab.models.families.FAMILIES")
    found["o_proj"] = _first(get_module(layer0, found["attn"]), _CANDIDATES["o_proj"])
    found["ln_mid"] = _first(layer0, _CANDIDATES["ln_mid"])
    found["ln_attn"] = _first(layer0, _CANDIDATES["ln_attn"])
    mlp = get_module(layer0, found["mlp"])
    found["act"] = _first(mlp, _CANDIDATES["act"])
    found["down"] = _first(mlp, _CANDIDATES["down"])
    found["pos_embed"] = _first(model, _CANDIDATES["pos_embed"])
    return Family(**found, guessed=True)


def family_of(model: nn.Module) -> Family:
    """The Family row of ``model`` (by ``config.model_type``), guessing for unknown types."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    return guess_family(model)
