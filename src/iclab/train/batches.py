"""From a world's NumPy batch to tensors, and the training loss on it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from iclab.worlds.base import TokenBatch, VectorBatch


def host_tensors(batch) -> dict[str, torch.Tensor]:
    """A world's batch as CPU tensors (sharing the arrays' memory): ``tokens`` and
    ``loss_mask``, or ``xs`` and ``ys``."""
    if isinstance(batch, TokenBatch):
        out = {"tokens": torch.from_numpy(batch.tokens)}
        if batch.loss_mask is not None:
            out["loss_mask"] = torch.from_numpy(batch.loss_mask)
    elif isinstance(batch, VectorBatch):
        out = {"xs": torch.from_numpy(batch.xs), "ys": torch.from_numpy(batch.ys)}
    else:
        raise TypeError(f"unknown batch type {type(batch).__name__}")
    return out


def tokens_in(batch) -> int:
    """Tokens (or, for vector worlds, (x, y) points) in a world's batch: what throughput counts."""
    return batch.tokens.size if isinstance(batch, TokenBatch) else batch.xs.shape[0] * batch.xs.shape[1]


def to_device(batch, device: torch.device) -> dict[str, torch.Tensor]:
    """A world's batch (or a dict of CPU tensors) on ``device``. From pinned memory the copy to a
    GPU is asynchronous."""
    tensors = batch if isinstance(batch, dict) else host_tensors(batch)
    return {k: v.to(device, non_blocking=True) for k, v in tensors.items()}


def token_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at every position, (batch, pos - 1): entry t is the loss of
    predicting ``tokens[:, t + 1]``."""
    logits = model(input_ids=tokens).logits[:, :-1]  # (batch, pos - 1, vocab)
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none"
                           ).view(tokens.shape[0], -1)


def loss_on_batch(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The scalar training loss: mean next-token cross-entropy over the positions that count,
    or the model's own loss for vector worlds (a wrapper with ``loss(xs, ys)``).

    ``batch["mask_count"]``, when present, divides the masked sum instead of this batch's own
    count: a slice of a global batch on one of N processes gives its share of the global
    batch's loss when divided by the global count over N (:mod:`iclab.train.distributed`)."""
    if "tokens" in batch:
        losses = token_losses(model, batch["tokens"])  # (batch, pos - 1)
        mask = batch.get("loss_mask")
        if mask is None:
            return losses.mean()
        m = mask[:, 1:].to(losses.dtype)
        count = batch["mask_count"] if "mask_count" in batch else m.sum().clamp_min(1)
        return (losses * m).sum() / count
    return model.loss(batch["xs"], batch["ys"])
