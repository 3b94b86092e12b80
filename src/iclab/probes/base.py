"""The probe protocol: validated parameters, then ``probe(model, prompts) -> ProbeResult``.

A probe is a frozen pydantic model: its constructor stores validated parameters and does
no work (scikit-learn's rule), and calling it measures one model on given prompts. It
never sees a module path: it reads activations by name through
:mod:`iclab.models.capture` and writes them through :mod:`iclab.models.patch`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from iclab.models.placement import execution_device
from iclab.probes.result import ProbeResult


class Probe(BaseModel):
    """Base class of every probe; subclasses set ``name`` and implement ``__call__``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: ClassVar[str] = ""

    def __call__(self, model: nn.Module, prompts) -> ProbeResult:
        raise NotImplementedError


def model_device(model: nn.Module) -> torch.device:
    """Where the model's inputs go (:func:`iclab.models.placement.execution_device`)."""
    return execution_device(model)


def as_tokens(model: nn.Module, prompts) -> torch.Tensor:
    """Token ids of a TokenBatch (or array, or tensor) on the model's device, (batch, pos)."""
    tokens = getattr(prompts, "tokens", prompts)
    t = torch.as_tensor(tokens, dtype=torch.long)
    return t.to(model_device(model))


def batched(n: int, size: int):
    """Slices covering range(n) in chunks of ``size`` (probes run prompts in chunks to bound memory)."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
