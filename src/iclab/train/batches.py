"""From a world's NumPy batch to tensors, and the training loss on it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iclab.worlds.base import TokenBatch, VectorBatch


def batch_at(world, data_seed: int, step: int, batch_size: int):
    """The batch of ``step``: a pure function of (seed, step), so the data stream's
    position after a resume is just the step number. A world with a curriculum
    (``at_step``) gives the world of that step."""
    if hasattr(world, "at_step"):
        world = world.at_step(step)
    return world.sample(np.random.default_rng([data_seed, step]), batch_size)


def to_device(batch, device: torch.device) -> dict[str, torch.Tensor]:
    if isinstance(batch, TokenBatch):
        out = {"tokens": torch.from_numpy(batch.tokens)}
        if batch.loss_mask is not None:
            out["loss_mask"] = torch.from_numpy(batch.loss_mask)
    elif isinstance(batch, VectorBatch):
        out = {"xs": torch.from_numpy(batch.xs), "ys": torch.from_numpy(batch.ys)}
    else:
        raise TypeError(f"unknown batch type {type(batch).__name__}")
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def token_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at every position, (batch, pos - 1): entry t is the loss of
    predicting ``tokens[:, t + 1]``."""
    logits = model(input_ids=tokens).logits[:, :-1]  # (batch, pos - 1, vocab)
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none"
                           ).view(tokens.shape[0], -1)


def loss_on_batch(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The scalar training loss: mean next-token cross-entropy over the positions that count,
    or the model's own loss for vector worlds (a wrapper with ``loss(xs, ys)``)."""
    if "tokens" in batch:
        losses = token_losses(model, batch["tokens"])  # (batch, pos - 1)
        mask = batch.get("loss_mask")
        if mask is None:
            return losses.mean()
        m = mask[:, 1:].to(losses.dtype)
        return (losses * m).sum() / m.sum().clamp_min(1)
    return model.loss(batch["xs"], batch["ys"])
