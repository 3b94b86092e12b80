"""Linear probe: is a target quantity linearly decodable from the hidden states, layer by layer?

For states ``h_j^l`` (the activation at ``site`` of layer ``l`` at position ``pos_j`` of prompt
``p_j``) and a target ``t_j ∈ R^k`` per state, a ridge regression from ``h^l`` to ``t`` is fitted
on the states of a random ``1 - test_fraction`` of the prompts and scored on the rest,

    R²_l = 1 - Σ_test ||t_j - t̂_j||² / Σ_test ||t_j - t̄||²

(:func:`iclab.metrics.linear_probe.ridge_probe_r2`: features standardised, penalty ``α`` per
train row, variance-weighted over the target's coordinates). Akyürek, Schuurmans, Andreas, Ma
and Zhou 2023, "What learning algorithm is in-context learning? Investigations with linear
models", section 5: the least-squares weight vector of the prompt so far (and the iterate of
gradient descent) can be read linearly from a trained model's hidden states. Spec
``mechanisms.md``, regression-icl.

Splitting by prompt keeps states of one prompt (which share its function) out of both
halves. The probe reads activations by name (:func:`iclab.models.capture.capture` through
:func:`~iclab.probes.decodability.gather_hidden`), so it runs on any model the hooks know: a
:class:`~iclab.models.vector.VectorModel` with inputs ``{"xs": ..., "ys": ...}`` or an HF causal
LM on token ids.

Rows: ``probe="linear_probe"``, ``metric="r2"``, one per ``layer`` and target (``label`` = the
target's name). Arrays: ``"r2"`` (targets, layers), ``"layers"`` (layers,), ``"targets"`` (targets,).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import InputError
from iclab.limits import MAX_BATCH, MAX_LAYERS, MAX_LIST, MAX_SEED
from iclab.metrics.linear_probe import ridge_probe_r2, split_by_group
from iclab.models.hooks import anatomy
from iclab.models.names import StreamSite
from iclab.probes.base import Probe
from iclab.probes.decodability import _n_prompts, gather_hidden
from iclab.probes.result import ProbeResult
from iclab.rows import Row


@dataclass(frozen=True)
class ProbeTargets:
    """States to read and what to decode from each.

    Attributes
    ----------
    inputs : LongTensor of shape (n, pos), or dict of str to Tensor with leading axis n
        What the model is called with (token ids, or ``{"xs": (n, points, D), "ys": (n, points)}``
        for a VectorModel).
    index : ndarray of shape (m, 2), int
        ``(prompt, position)`` of each state.
    targets : dict of str to ndarray of shape (m, k) (or (m,))
        One array per target, row ``j`` for state ``index[j]``.
    """

    inputs: torch.Tensor | Mapping[str, torch.Tensor]
    index: np.ndarray
    targets: Mapping[str, np.ndarray]

    def __post_init__(self):
        index = np.asarray(self.index, dtype=np.int64)
        n = _n_prompts(self.inputs)
        if index.ndim != 2 or index.shape[1] != 2 or len(index) == 0:
            raise InputError(f"ProbeTargets.index must have shape (m, 2) with m >= 1; got {index.shape}")
        if index[:, 0].min() < 0 or index[:, 0].max() >= n:
            raise InputError(f"ProbeTargets.index names prompts outside 0..{n - 1}")
        targets = {k: np.asarray(v, dtype=np.float64).reshape(len(index), -1) for k, v in self.targets.items()}
        if not targets:
            raise InputError("ProbeTargets.targets is empty: give at least one target")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "targets", targets)


class LinearProbe(Probe):
    """Held-out R² of a ridge probe from the hidden states of each layer to each target.

    Parameters
    ----------
    alpha : float, default 0.01
        Ridge penalty per train row on standardised features, ``>= 0``.
    test_fraction : float, default 0.25
        Share of the prompts held out, in (0, 1).
    seed : int, default 0
        Seed of the train/test split of the prompts.
    layers : list of int or None, default None
        None probes every layer.
    site : {"resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post"}, default "resid_post"
    batch_size : int, default 64
        Prompts per forward pass.

    Call with ``(model, prompts)``, ``prompts`` a :class:`ProbeTargets`.
    """

    name: ClassVar[str] = "linear_probe"

    alpha: float = Field(0.01, ge=0.0)
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    layers: list[Annotated[int, Field(ge=0, le=MAX_LAYERS)]] | None = Field(None, max_length=MAX_LIST)
    site: StreamSite = "resid_post"
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)

    def __call__(self, model: nn.Module, prompts: ProbeTargets) -> ProbeResult:
        n_layers = anatomy(model).n_layers
        layers = list(range(n_layers)) if self.layers is None else list(self.layers)
        bad = [layer for layer in layers if not 0 <= layer < n_layers]
        if bad:
            raise InputError(f"LinearProbe.layers {bad} out of range; the model has layers 0..{n_layers - 1}")
        H = gather_hidden(model, prompts.inputs, prompts.index, layers, self.site, self.batch_size)  # (layers, m, d)
        test = split_by_group(prompts.index[:, 0], self.test_fraction, self.seed)  # (m,)
        names = list(prompts.targets)
        r2 = np.array([[ridge_probe_r2(H[li], prompts.targets[t], test, self.alpha) for li in range(len(layers))]
                       for t in names])  # (targets, layers)
        rows = [Row(self.name, "r2", float(r2[ti, li]), layer=layer, label=t)
                for ti, t in enumerate(names) for li, layer in enumerate(layers)]
        return ProbeResult(rows, {"r2": r2, "layers": np.array(layers), "targets": np.array(names)})
