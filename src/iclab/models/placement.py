"""Where a module's weights live and where it computes, for models that accelerate dispatched
(``from_pretrained(..., device_map=...)``): a layer may sit on another GPU, or be offloaded to
the CPU or the disk, its parameters then left on the ``meta`` device and loaded for the length
of its own forward only (by the ``AlignDevicesHook`` accelerate attaches, ``module._hf_hook``).

Tools that read weights directly (per-head output matrices, the unembedding, a norm's affine
map) or make tensors to feed a module read them through these two functions, so that they
give on a dispatched model the numbers they give on one device.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def module_tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """The parameter or buffer ``name`` of ``module`` itself (not a submodule's), with its
    values: from accelerate's offload map when the module holds only a ``meta`` placeholder.
    None when the module has no such tensor."""
    t = getattr(module, name, None)
    if not isinstance(t, torch.Tensor) or t.device.type != "meta":
        return t
    weights = getattr(getattr(module, "_hf_hook", None), "weights_map", None)
    if weights is None:
        raise RuntimeError(f"{type(module).__name__}.{name} is on the meta device and no offload map holds it: "
                           f"the model's weights were never loaded")
    return weights[name]


def execution_device(module: nn.Module) -> torch.device:
    """The device ``module`` computes on: the one accelerate moves its inputs to, else that of
    its first parameter or buffer that holds values, else the CPU."""
    hooked = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
    if hooked is not None:
        return torch.device(hooked if not isinstance(hooked, int) else f"cuda:{hooked}")
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.device.type != "meta":
            return t.device
    return torch.device("cpu")
