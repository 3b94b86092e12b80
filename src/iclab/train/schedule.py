"""The learning-rate schedule: linear warm-up, then cosine decay."""

from __future__ import annotations

import math


def get_lr(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float) -> float:
    """Learning rate at ``step`` (0-based).

    lr(s) = lr * (s + 1) / warmup                                  for s < warmup
    lr(s) = lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2,        p = (s - warmup) / (steps - warmup)

    with ``lr_min = lr * min_lr_ratio``.
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    lr_min = lr * min_lr_ratio
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
