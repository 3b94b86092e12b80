"""Fine-tuning the first or the last layers of a causal LM (LoRA or full), through the one training loop.

For a prompt ``P`` and its answer tokens ``a_1..a_m``, the loss is the mean next-token
cross-entropy over the answer only,

    L = -(1/m) Σ_i log p(a_i | P, a_<i),

which is the trainer's own masked loss (:func:`iclab.train.batches.loss_on_batch`) on
batches whose ``loss_mask`` holds the answer positions (:class:`AnswerSequences`). The
parameters trained are those left with ``requires_grad``:

- LoRA (Hu et al. 2021) adds ``ΔW = (α/r) B A`` (rank ``r``) to every linear map of the
  chosen layers (attention and MLP, found by type, so every family works), with dropout on
  the adapter input; after training the adapters are merged, so probes see an ordinary HF
  model;
- full tuning trains every parameter of the chosen layers and freezes the rest
  (embeddings, other layers, final norm, unembedding).

Han et al., ICML 2025 (fine-tuning the first 10 layers of Llama-3.1-8B lifts bitwise
accuracy from 26% to 90%, the last 10 only to 66%); spec ``task_vectors.md``,
"Fine-tuning first vs last layers" (LoRA rank 16, alpha 16, dropout 0.1, or full tuning).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from transformers.pytorch_utils import Conv1D

from iclab.config import Frozen, TrainConfig
from iclab.limits import MAX_BATCH, MAX_LAYERS, MAX_PROMPTS, MAX_STEPS, MAX_WIDTH
from iclab.models.hooks import anatomy
from iclab.train.loop import train
from iclab.worlds.base import TokenBatch


class FinetuneSettings(Frozen):
    """Fine-tuning of the first or last ``n_layers`` layers, with LoRA or in full.

    Parameters
    ----------
    enabled : bool, default False
    method : {"lora", "full"}, default "lora"
        ``lora``: adapters on every linear map of the chosen layers, merged after training.
        ``full``: every parameter of the chosen layers is trained, the rest frozen.
    n_layers : int, default 10
        Layers tuned at each end (at most half the model; fewer if the model is smaller).
    rank : int, default 16
        LoRA only, as are ``alpha`` and ``dropout``.
    alpha : float, default 16
    dropout : float, default 0.1
    steps : int, default 200
    batch_size : int, default 8
    lr : float, default 2e-4
        Constant (no warm-up, no decay), AdamW without weight decay or clipping.
    train_prompts : int, default 200
        Training prompts per task (drawn apart from the evaluation prompts).
    """

    enabled: bool = False
    method: Literal["lora", "full"] = "lora"
    n_layers: int = Field(10, ge=1, le=MAX_LAYERS)
    rank: int = Field(16, ge=1, le=MAX_WIDTH)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    steps: int = Field(200, ge=1, le=MAX_STEPS)
    batch_size: int = Field(8, ge=1, le=MAX_BATCH)
    lr: float = Field(2e-4, gt=0, le=1)
    train_prompts: int = Field(200, ge=1, le=MAX_PROMPTS)

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup=0, min_lr_ratio=1.0,
                           weight_decay=0.0, grad_clip=0.0, eval_every=self.steps, ckpt_every=self.steps)


class AnswerSequences:
    """Prompts followed by their answers, as a data source of the trainer: ``sample(rng, n)``
    draws ``n`` distinct sequences (all of them if fewer), right-padded with ``pad_id`` to the
    longest, with ``loss_mask`` true on the answer tokens only.

    Parameters
    ----------
    seqs : list of list of int
        Token ids of each prompt followed by its answer.
    starts : list of int
        Where each answer starts (the prompt's length).
    pad_id : int
    """

    def __init__(self, seqs: list[list[int]], starts: list[int], pad_id: int):
        if not seqs or len(seqs) != len(starts):
            raise ValueError(f"need one start per sequence and at least one sequence; got {len(seqs)} and "
                             f"{len(starts)}")
        self.seqs, self.starts, self.pad_id = seqs, starts, pad_id

    def sample(self, rng: np.random.Generator, n: int) -> TokenBatch:
        pick = rng.choice(len(self.seqs), size=min(n, len(self.seqs)), replace=False)
        width = max(len(self.seqs[j]) for j in pick)
        tokens = np.full((len(pick), width), self.pad_id, dtype=np.int64)  # (batch, pos)
        mask = np.zeros((len(pick), width), dtype=bool)  # (batch, pos): predicting this token counts
        for r, j in enumerate(pick):
            tokens[r, : len(self.seqs[j])] = self.seqs[j]
            mask[r, self.starts[j]: len(self.seqs[j])] = True  # the answer only
        return TokenBatch(tokens, mask)


def tuned_layers(n_layers_model: int, n: int, end: Literal["first", "last"]) -> list[int]:
    """The ``n`` first or last layers, ``n`` capped at half the model (at least 1)."""
    n = max(1, min(n, n_layers_model // 2))
    return list(range(n)) if end == "first" else list(range(n_layers_model - n, n_layers_model))


def linear_targets(model: nn.Module, layers: Sequence[int]) -> tuple[list[str], bool]:
    """Full module names of every linear map (``nn.Linear`` or GPT-2's ``Conv1D``) in ``layers``,
    and whether they are ``Conv1D`` (stored transposed: LoRA's ``fan_in_fan_out``)."""
    a = anatomy(model)
    names, conv = [], False
    for layer in layers:
        for name, mod in a.layers[layer].named_modules():
            if isinstance(mod, (nn.Linear, Conv1D)):
                names.append(f"{a.family.layers}.{layer}.{name}")
                conv = conv or isinstance(mod, Conv1D)
    return names, conv


@contextmanager
def finetuned(model: nn.Module, data: AnswerSequences, layers: Sequence[int], cfg: FinetuneSettings,
              seed: int) -> Iterator[nn.Module]:
    """``model`` itself with ``layers`` tuned on ``data`` by ``cfg.method``, for the ``with`` block;
    on leaving it ``model`` is bit-identical to before (weights, dtypes, ``requires_grad``, mode).

    Nothing is copied but the tuned layers' own tensors: they are set aside before tuning and
    put back after, so the extra memory is those layers (plus LoRA's adapters and the optimizer
    state while training), not a second model. LoRA's adapters are injected into ``model``,
    trained, merged into the tuned layers' weights and removed, so that inside the block probes
    see an ordinary HF model with the same module names. The trained parameters are float32
    whatever the model's dtype (full tuning casts them back afterwards, so a bfloat16 model
    stays one dtype). Batch ``s`` is drawn from ``default_rng([seed, s])``; the LoRA
    initialisation and dropout use ``torch.manual_seed(seed)`` inside a forked RNG, so the
    caller's torch RNG is untouched.
    """
    blocks = anatomy(model).layers
    params = [p for layer in layers for p in blocks[layer].parameters()]
    saved = [p.data.clone() for p in params]  # the tuned layers only
    grads = {p: p.requires_grad for p in model.parameters()}
    training = model.training
    peft_model = None
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            torch.manual_seed(seed)
            if cfg.method == "lora":
                peft_model = _with_lora(model, layers, cfg)
                train(peft_model, data, cfg.train_config(), data_seed=seed,
                      label=f"LoRA layers {layers[0]}-{layers[-1]}")
                tuned, peft_model = peft_model.merge_and_unload(), None  # adapters merged into the weights, removed
                assert tuned is model, "peft's merge_and_unload returned another model"
            else:
                dtypes = _unfreeze(model, layers)
                train(model, data, cfg.train_config(), data_seed=seed, label=f"layers {layers[0]}-{layers[-1]}")
                for p, dtype in dtypes:
                    p.grad = None
                    p.data = p.data.to(dtype)
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        yield model
    finally:
        if peft_model is not None:  # training failed: take the adapters out unmerged
            peft_model.unload()
        for p, original in zip(params, saved):
            p.grad = None
            p.data = original
        for p, flag in grads.items():
            p.requires_grad_(flag)
        model.train(training)


def _with_lora(model: nn.Module, layers: Sequence[int], cfg: FinetuneSettings) -> nn.Module:
    """``model`` wrapped with float32 LoRA adapters on every linear map of ``layers``; only they train."""
    from peft import LoraConfig, get_peft_model

    targets, conv = linear_targets(model, layers)
    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                        fan_in_fan_out=conv, bias="none")
    peft_model = get_peft_model(model, config)
    for p in peft_model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return peft_model


def _unfreeze(model: nn.Module, layers: Sequence[int]) -> list[tuple[nn.Parameter, torch.dtype]]:
    """Freeze every parameter but those of ``layers``, which become float32; returns them with
    their original dtypes."""
    blocks = anatomy(model).layers
    for p in model.parameters():
        p.requires_grad_(False)
    out = []
    for layer in layers:
        for p in blocks[layer].parameters():
            out.append((p, p.dtype))
            p.data = p.data.float()
            p.requires_grad_(True)
    return out
