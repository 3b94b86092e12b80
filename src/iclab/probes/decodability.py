"""Task decodability (TD) of hidden states, at every layer in one forward pass.

For prompts ``j = 1..n`` with latent task ``z_j`` (a basis, a natural task, or Null), the
feature ``h_j^l`` is the activation at layer ``l`` at one chosen position of prompt ``j``
(the token just before the answer, or the ``y`` token of the last demonstration); TD at
layer ``l`` is the leave-one-out k-nearest-neighbour vote of
:func:`iclab.metrics.decodability.task_decodability`:

    TD_t^l = |{ j : z_j = t, ẑ_j^l = t }| / |{ j : z_j = t }|,    TD^l = (1/T) Σ_t TD_t^l

Han, Song, Gore and Agrawal, ICML 2025, "Emergence and Effectiveness of Task Vectors in
In-Context Learning: An Encoder Decoder Perspective"; spec ``task_vectors.md``, task
decodability (k = 10, N = 100 prompts per task, Euclidean, every layer, best layer).

The probe reads activations by name (:func:`iclab.models.capture.capture`), so it works on
any model the hooks know: an HF causal LM on token ids, or a
:class:`~iclab.models.vector.VectorModel` on ``{"xs": ..., "ys": ...}``.
:func:`td_result` turns activations captured any other way into the same rows.

Rows: ``probe="td"``, ``metric="td"`` (mean over tasks, ``label`` None) and
``metric="td_task"`` (``label`` = the task), one per ``layer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.metrics.decodability import td_profile
from iclab.models.capture import capture
from iclab.models.hooks import anatomy
from iclab.models.names import StreamSite, act_name
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.result import ProbeResult
from iclab.rows import Row

#: layer sites whose activation has shape (batch, pos, d_model)


@dataclass(frozen=True)
class LabelledInputs:
    """Prompts to read features from: model inputs, one position per prompt, one label per prompt.

    Attributes
    ----------
    inputs : LongTensor of shape (n, pos), or dict of str to Tensor with leading axis n
        What the model is called with: token ids (right-padded: a causal model's states up
        to a prompt's last real token do not depend on what follows), or keyword arguments
        such as ``{"xs": (n, points, D), "ys": (n, points)}`` for a VectorModel.
    positions : ndarray of shape (n,), int
        Sequence position of the feature in each prompt.
    labels : ndarray of shape (n,)
        Latent task of each prompt (str or int).
    """

    inputs: torch.Tensor | Mapping[str, torch.Tensor]
    positions: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        n = _n_prompts(self.inputs)
        positions = np.asarray(self.positions, dtype=np.int64)
        labels = np.asarray(self.labels)
        if positions.shape != (n,) or labels.shape != (n,):
            raise ValueError(f"positions and labels must have shape (n,) = ({n},); "
                             f"got {positions.shape} and {labels.shape}")
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "labels", labels)


def _n_prompts(inputs) -> int:
    if isinstance(inputs, torch.Tensor):
        return inputs.shape[0]
    sizes = {v.shape[0] for v in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(f"inputs must share their leading (prompt) axis; got sizes {sorted(sizes)}")
    return sizes.pop()


def _rows_of(inputs, sl: slice, device: torch.device):
    if isinstance(inputs, torch.Tensor):
        return inputs[sl].to(device)
    return {k: v[sl].to(device) for k, v in inputs.items()}


@torch.no_grad()
def gather_hidden(model: nn.Module, inputs, index: np.ndarray, layers: Sequence[int], site: StreamSite = "resid_post",
                  batch_size: int = 64) -> np.ndarray:
    """Activations at chosen (prompt, position) pairs at several layers, from one pass per chunk.

    Parameters
    ----------
    model : PreTrainedModel or wrapper with ``.backbone``
    inputs : LongTensor of shape (n, pos) or dict of Tensors with leading axis n
    index : array-like of shape (m, 2), int
        Rows ``(prompt, position)``; a prompt may appear several times.
    layers : sequence of int
    site : {"resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post"}, default "resid_post"
    batch_size : int, default 64
        Prompts per forward pass.

    Returns
    -------
    ndarray of shape (layers, m, d_model), float32
        In the order of ``index``.
    """
    index = np.asarray(index, dtype=np.int64).reshape(-1, 2)
    names = [act_name(site, layer) for layer in layers]
    n, device = _n_prompts(inputs), model_device(model)
    out: np.ndarray | None = None
    for sl in batched(n, batch_size):
        rows = np.nonzero((index[:, 0] >= sl.start) & (index[:, 0] < sl.stop))[0]
        if len(rows) == 0:
            continue
        cache = capture(model, _rows_of(inputs, sl, device), names)
        b = torch.as_tensor(index[rows, 0] - sl.start, device=device)
        p = torch.as_tensor(index[rows, 1], device=device)
        for li, name in enumerate(names):
            h = cache[name][b, p].float().cpu().numpy()  # (rows, d_model)
            if out is None:
                out = np.zeros((len(names), len(index), h.shape[1]), dtype=np.float32)
            out[li, rows] = h
    if out is None:
        raise ValueError("gather_hidden: index selects no prompt")
    return out


def hidden_states(model: nn.Module, prompts: LabelledInputs, layers: Sequence[int], site: StreamSite = "resid_post",
                  batch_size: int = 64) -> np.ndarray:
    """The feature of each prompt at each layer, (layers, n, d_model), float32."""
    index = np.stack([np.arange(len(prompts.positions)), prompts.positions], axis=1)  # (n, 2)
    return gather_hidden(model, prompts.inputs, index, layers, site, batch_size)


def td_result(H_layers: np.ndarray, labels: np.ndarray, layers: Sequence[int] | None = None,
              k: int = 10) -> ProbeResult:
    """TD rows from features already captured, (layers, n, d) with labels (n,).

    Returns rows ``td`` (per layer) and ``td_task`` (per layer and task) and arrays
    ``"layers"`` (layers,), ``"td"`` (layers,), ``"td_task"`` (tasks, layers) and
    ``"tasks"`` (tasks,) in sorted label order.
    """
    H_layers = np.asarray(H_layers)
    layers = list(range(H_layers.shape[0])) if layers is None else list(layers)
    if len(layers) != H_layers.shape[0]:
        raise ValueError(f"{len(layers)} layer numbers for {H_layers.shape[0]} layers of features")
    prof = td_profile(dict(zip(layers, H_layers)), labels, k)
    rows = []
    for li, layer in enumerate(layers):
        rows.append(Row("td", "td", prof.mean[li], layer=layer))
        rows += [Row("td", "td_task", v[li], layer=layer, label=str(t)) for t, v in prof.per_task.items()]
    tasks = list(prof.per_task)
    arrays = {"layers": np.array(layers), "td": prof.mean, "tasks": np.array([str(t) for t in tasks]),
              "td_task": np.stack([prof.per_task[t] for t in tasks])}
    return ProbeResult(rows, arrays)


class TaskDecodability(Probe):
    """Task decodability at every layer (or chosen layers) from one forward pass per chunk.

    ``TD^l = mean_t TD_t^l``, the leave-one-out k-NN vote on the activation at ``site`` of
    layer ``l`` at each prompt's position (module docstring; Han et al., ICML 2025; spec
    ``task_vectors.md``).

    Parameters
    ----------
    k : int, default 10
        Voters per point.
    layers : list of int or None, default None
        None measures every layer.
    site : {"resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post"}, default "resid_post"
    batch_size : int, default 64
    keep_hidden : bool, default False
        Also return the features as ``arrays["hidden"]``, (layers, n, d_model).

    Call with ``(model, prompts)``, ``prompts`` a :class:`LabelledInputs`. Returns the rows of
    :func:`td_result`, whose arrays it also returns.
    """

    name: ClassVar[str] = "td"
    k: int = Field(10, ge=1)
    layers: list[int] | None = None
    site: StreamSite = "resid_post"
    batch_size: int = Field(64, ge=1)
    keep_hidden: bool = False

    def __call__(self, model: nn.Module, prompts: LabelledInputs) -> ProbeResult:
        n_layers = anatomy(model).n_layers
        layers = list(range(n_layers)) if self.layers is None else self.layers
        bad = [layer for layer in layers if not 0 <= layer < n_layers]
        if bad:
            raise ValueError(f"TaskDecodability.layers {bad} out of range; the model has layers 0..{n_layers - 1}")
        H = hidden_states(model, prompts, layers, self.site, self.batch_size)  # (layers, n, d_model)
        result = td_result(H, prompts.labels, layers, self.k)
        if self.keep_hidden:
            result.arrays["hidden"] = H
        return result
