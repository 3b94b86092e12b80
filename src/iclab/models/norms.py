"""A norm taken apart: its scale, and the affine map it applies after dividing by it.

Every norm iclab meets computes ``norm(x) = w * c(x) / s(x) + b`` per position, with
``c(x) = x - mean(x)`` and ``s(x) = sqrt(var(x) + eps)`` for LayerNorm, and ``c(x) = x``,
``s(x) = sqrt(mean(x^2) + eps)`` for RMSNorm. ``s`` is TransformerLens's ``hook_scale``.
With ``s`` held fixed the norm is linear in ``x`` (plus ``b``), which is what direct logit
attribution needs: the final residual is a sum of components, and each component's part
of the normalised output is ``w * c(component) / s``.

The kind (centred or not) and ``eps`` are read from the module; the effective weight
``w`` and bias ``b`` are measured by calling the module itself, so a family's own
convention (Gemma's ``1 + weight``, a missing bias) needs no code here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from iclab.errors import ConfigError
from iclab.models.placement import execution_device


def norm_kind(norm: nn.Module) -> str:
    """``"layer"`` (centred) or ``"rms"``; raises ConfigError for a norm of another kind."""
    name = type(norm).__name__.lower()
    if "rms" in name:
        return "rms"
    if isinstance(norm, nn.LayerNorm) or name.endswith("layernorm"):
        return "layer"
    raise ConfigError(f"{type(norm).__name__} is neither a LayerNorm nor an RMSNorm: iclab cannot compute its scale")


def norm_eps(norm: nn.Module) -> float:
    for attr in ("eps", "variance_epsilon", "epsilon"):
        v = getattr(norm, attr, None)
        if isinstance(v, (int, float)):
            return float(v)
    raise ConfigError(f"{type(norm).__name__} has no eps attribute (eps, variance_epsilon): cannot compute its scale")


def center(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``c(x)``: ``x`` minus its mean over the last axis for LayerNorm, ``x`` itself for RMSNorm."""
    return x - x.mean(-1, keepdim=True) if norm_kind(norm) == "layer" else x


def norm_scale(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The norm's divisor ``s(x)`` for input ``x`` (..., d_model) → (..., 1), in float32."""
    xf = center(norm, x.float())
    return (xf.pow(2).mean(-1, keepdim=True) + norm_eps(norm)).sqrt()


@dataclass(frozen=True)
class NormAffine:
    """The per-channel map after the division: ``norm(x) = weight * c(x) / s(x) + bias``."""

    weight: torch.Tensor  # (d_model,)
    bias: torch.Tensor  # (d_model,)


@torch.no_grad()
def norm_affine(norm: nn.Module, d_model: int) -> NormAffine:
    """Measure ``weight`` and ``bias`` by calling ``norm``: ``bias = norm(0)`` (the centred,
    scaled zero vector is zero) and ``weight = (norm(u) - bias) / (c(u) / s(u))`` on a probe
    vector ``u`` whose normalised entries are all ±1 (so no entry divides by zero)."""
    p = next(norm.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    device = execution_device(norm)  # not the parameter's: an offloaded norm's is on "meta"
    bias = norm(torch.zeros(1, d_model, dtype=dtype, device=device))[0].float()  # (d_model,)
    u = torch.ones(d_model, dtype=torch.float32, device=device)
    u[1::2] = -1.0  # (d_model,): mean 0 for even d_model; ±1 after centring and scaling for both kinds
    if d_model % 2:
        u[-1] = 0.0
    unit = center(norm, u) / norm_scale(norm, u)  # (d_model,)
    out = norm(u.to(dtype)[None])[0].float() - bias  # (d_model,)
    safe = unit.abs() > 1e-3
    weight = torch.where(safe, out / torch.where(safe, unit, torch.ones_like(unit)), torch.zeros_like(unit))
    if not safe.all():  # an odd width leaves one entry at 0: measure it with a second probe
        v = torch.zeros_like(u)
        v[-1], v[0] = 1.0, -1.0
        unit_v = center(norm, v) / norm_scale(norm, v)
        out_v = norm(v.to(dtype)[None])[0].float() - bias
        weight[-1] = out_v[-1] / unit_v[-1]
    return NormAffine(weight, bias)


def frozen_norm(norm: nn.Module, affine: NormAffine, component: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The part of ``norm(x)`` that a component of ``x`` makes when the scale ``s(x)`` is held
    fixed, without the bias: ``weight * c(component) / scale``. ``component`` (..., d_model),
    ``scale`` broadcastable to (..., 1). Summed over the components of ``x``, plus
    ``bias``, this is ``norm(x)``."""
    return affine.weight.to(component.device) * center(norm, component.float()) / scale
