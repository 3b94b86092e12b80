"""Build a small causal LM from an architecture spec, as a plain HF ``PreTrainedModel``.

The spec names a family (gpt2, llama, or mistral for sliding-window attention) and a
size; everything else is HF's own model code, so every probe that works on a
pretrained model works on these unchanged. Attention-only models are the same
architectures with an MLP of width 0: it outputs exactly zero, and the config still
round-trips through ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import ConfigDict, Field, model_validator
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, PreTrainedModel)

from iclab.limits import MAX_HEADS, MAX_LAYERS, MAX_MLP, MAX_SEQ, MAX_WIDTH
from iclab.models.load import LoadSettings


class ModelSpec(LoadSettings):
    """Architecture of a model trained here, and how a pretrained one is loaded
    (``device_map``, ``dtype``: see :class:`~iclab.models.load.LoadSettings`).

    Parameters
    ----------
    family : {"llama", "gpt2", "mistral"}, default "llama"
        HF architecture. "mistral" is llama with sliding-window attention (``window``).
    n_layers : int, default 2
        At most 256.
    d_model : int, default 128
        At most 65,536.
    n_heads : int, default 4
        ``d_model`` must be divisible by it; at most 1,024.
    d_mlp : int or None, default None
        MLP width; None means ``4 * d_model``. Ignored when ``attn_only``. At most 262,144.
    attn_only : bool, default False
        No MLPs (MLP width 0), as in Olsson et al.'s attention-only models.
    window : int or None, default None
        Sliding attention window in tokens (mistral only): each token sees itself and
        the ``window - 1`` tokens before it.
    max_len : int, default 2048
        Longest sequence (GPT-2's learned position table; RoPE's cache size); at most 2^20.
    device_map : {"auto"} or None, default None
        Pretrained models only: "auto" spreads one over the GPUs and the CPU.
    dtype : {"auto", "float32", "bfloat16", "float16"}, default "auto"
        Pretrained models only: the weights' dtype ("auto": bfloat16 on a GPU, float32 on the CPU).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    family: Literal["llama", "gpt2", "mistral"] = "llama"
    n_layers: int = Field(2, ge=1, le=MAX_LAYERS)
    d_model: int = Field(128, ge=8, le=MAX_WIDTH)
    n_heads: int = Field(4, ge=1, le=MAX_HEADS)
    d_mlp: int | None = Field(None, ge=1, le=MAX_MLP)
    attn_only: bool = False
    window: int | None = Field(None, ge=1, le=MAX_SEQ)
    max_len: int = Field(2048, ge=8, le=MAX_SEQ)

    @model_validator(mode="after")
    def _check(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.attn_only and self.family == "gpt2":
            raise ValueError("attn_only=True needs family 'llama' or 'mistral': GPT-2's MLP cannot have width 0 "
                             "(and its output bias would still train)")
        if self.window is not None and self.family != "mistral":
            raise ValueError(f"window={self.window} needs family='mistral' (sliding-window attention), "
                             f"got family={self.family!r}")
        return self

    @property
    def mlp_width(self) -> int:
        return 0 if self.attn_only else (self.d_mlp or 4 * self.d_model)


def hf_config(spec: ModelSpec, vocab_size: int):
    """The ``transformers`` config object for ``spec`` with a vocabulary of ``vocab_size``."""
    if spec.family == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_positions=spec.max_len, n_embd=spec.d_model,
                          n_layer=spec.n_layers, n_head=spec.n_heads, n_inner=spec.mlp_width,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
                          bos_token_id=None, eos_token_id=None)
    common = dict(vocab_size=vocab_size, hidden_size=spec.d_model, intermediate_size=spec.mlp_width,
                  num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads,
                  num_key_value_heads=spec.n_heads, max_position_embeddings=spec.max_len,
                  tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    if spec.family == "mistral":
        return MistralConfig(sliding_window=spec.window, **common)
    return LlamaConfig(**common)


_CLASSES = {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM, "mistral": MistralForCausalLM}


def build_model(spec: ModelSpec, vocab_size: int, seed: int) -> PreTrainedModel:
    """A freshly initialised model for ``spec``; the same seed gives the same weights."""
    config = hf_config(spec, vocab_size)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):  # init draws from torch's RNG: keep the caller's stream intact
        torch.manual_seed(seed)
        with warnings.catch_warnings():  # an MLP of width 0 (attention-only) warns that its init is a no-op
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            model = _CLASSES[spec.family](config)
    return model


def n_params(model: torch.nn.Module, non_embedding: bool = False) -> int:
    """Parameter count; with ``non_embedding`` the token embedding and unembedding are left out."""
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.get_input_embeddings().weight.numel()
        out = model.get_output_embeddings()
        if out is not None and out.weight is not model.get_input_embeddings().weight:
            total -= out.weight.numel()
    return total
