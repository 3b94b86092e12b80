"""The learning-rate schedule: linear warm-up, then cosine decay (over every step left, or only
the last ``decay_steps``)."""

from __future__ import annotations

import math


def get_lr(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float,
           decay_steps: int | None = None) -> float:
    """Learning rate at ``step`` (0-based).

    lr(s) = lr * (s + 1) / warmup                                  for s < warmup
    lr(s) = lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2,        p = max(0, s - start) / (steps - start)

    with ``lr_min = lr * min_lr_ratio`` and ``start = warmup``, or with ``decay_steps``
    ``start = max(warmup, steps - decay_steps)``: the lr stays at ``lr`` until then (the
    warm-up-stable-decay schedule; Hägele et al. 2024, "Scaling Laws and Compute-Optimal
    Training Beyond Fixed Training Durations").
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    start = warmup if decay_steps is None else max(warmup, steps - decay_steps)
    progress = min(1.0, max(0, step - start) / max(1, steps - start))
    lr_min = lr * min_lr_ratio
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
