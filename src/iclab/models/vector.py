"""A transformer for continuous-input worlds: linear read-in and read-out around an HF backbone.

A prompt ``(x_1, y_1, ..., x_n, y_n)`` becomes a sequence of ``2n`` vectors of ``D`` dims,
``x_i`` then ``y_i`` padded with zeros to ``D`` dims (``[y_i, 0, ..., 0]``)::

    z[b, 2i]     = xs[b, i]                       (batch, 2 * points, D)
    z[b, 2i + 1] = (ys[b, i], 0, ..., 0)

A linear read-in maps each vector to the model width and goes in through
``inputs_embeds``; the backbone's final hidden states (after its final norm) at the
``x`` positions go through a linear read-out to one number, the prediction of the ``y``
that follows:

    preds[b, i] = W_out · h_L[b, 2i] + b_out      (batch, points)

Position ``2i`` sees ``x_1..x_{i+1}`` and ``y_1..y_i`` only (causal attention), so
``preds[:, i]`` depends on ``xs[:, :i+1]`` and ``ys[:, :i]``: the contract of every
in-context baseline (:class:`iclab.baselines.InContextPredictor`), so an evaluation loops
over ``[model, *baselines]``. The loss is the mean squared error of these predictions.
Garg, Tsipras, Liang and Valiant 2022 (their ``TransformerModel``: ``_combine``,
``_read_in``, ``_read_out``); Han, Song, Gore and Agrawal, ICML 2025; spec
``task_vectors.md``, synthetic part, and ``DESIGN.md`` (Model).

The backbone is the whole HF causal LM built by :func:`iclab.models.build.build_model`
(its token embedding and LM head go unused; the vocabulary is 1), kept as ``.backbone``
so that :mod:`iclab.models.hooks` finds its layers: capture and patching work on a
:class:`VectorModel` unchanged, with inputs ``{"xs": xs, "ys": ys}``. ``hook_embed`` (the
token embedding) never fires, because the read-in replaces it; every layer site does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from iclab.errors import ConfigError, ModelLoadError
from iclab.models.build import ModelSpec, build_model

#: files of a saved VectorModel
CONFIG_FILE = "vector_model.json"
WEIGHTS_FILE = "model.safetensors"


def interleave(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """``(x_1, [y_1, 0..], x_2, [y_2, 0..], ...)``: (batch, points, D), (batch, points) → (batch, 2 * points, D)."""
    B, P, D = xs.shape
    ys_wide = torch.cat([ys.unsqueeze(-1), ys.new_zeros(B, P, D - 1)], dim=-1)  # (B, P, D)
    return torch.stack([xs, ys_wide], dim=2).reshape(B, 2 * P, D)  # (B, P, 2, D) -> (B, 2P, D)


def x_position(i: int | np.ndarray) -> int | np.ndarray:
    """Sequence position of ``x_i`` (0-based point ``i``): ``2i``. The read-out there predicts ``y_i``."""
    return 2 * i


def y_position(i: int | np.ndarray) -> int | np.ndarray:
    """Sequence position of ``y_i`` (0-based point ``i``): ``2i + 1``."""
    return 2 * i + 1


class VectorModel(nn.Module):
    """Read-in, HF causal-LM backbone, read-out: an in-context regression transformer.

    Parameters
    ----------
    spec : ModelSpec
        Backbone architecture (gpt2, llama or mistral); ``spec.max_len`` must be at least
        ``2 * points`` of the prompts it will see.
    dim : int
        Input dimension ``D`` (the world's ``dim``); ``D >= 1``.
    seed : int, default 0
        Initialisation seed of the backbone and of the read-in/read-out (the caller's torch
        RNG stream is left untouched).
    name : str, default "transformer"
        Label in evaluations (the :class:`~iclab.baselines.InContextPredictor` ``name``).

    Attributes
    ----------
    backbone : PreTrainedModel
        The HF causal LM whose layers are hooked by name.
    read_in : nn.Linear
        ``D -> d_model``.
    read_out : nn.Linear
        ``d_model -> 1``.
    """

    def __init__(self, spec: ModelSpec, dim: int, seed: int = 0, name: str = "transformer"):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ConfigError(f"VectorModel dim must be an integer >= 1; got {dim!r}")
        self.spec, self.dim, self.seed, self.name = spec, int(dim), seed, name
        self.backbone = build_model(spec, vocab_size=1, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            self.read_in = nn.Linear(self.dim, spec.d_model)
            self.read_out = nn.Linear(spec.d_model, 1)

    # --- forward ---------------------------------------------------------------------
    def forward(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """Predictions of shape (batch, points): ``preds[:, i]`` from ``xs[:, :i+1]``, ``ys[:, :i]``.

        Parameters
        ----------
        xs : Tensor of shape (batch, points, D)
        ys : Tensor of shape (batch, points)
        """
        if xs.ndim != 3 or xs.shape[2] != self.dim:
            raise ValueError(f"xs must have shape (batch, points, {self.dim}); got {tuple(xs.shape)}")
        if ys.shape != xs.shape[:2]:
            raise ValueError(f"ys must have shape (batch, points) = {tuple(xs.shape[:2])}; got {tuple(ys.shape)}")
        if 2 * xs.shape[1] > self.spec.max_len:
            raise ValueError(f"prompts of {xs.shape[1]} points make {2 * xs.shape[1]} tokens, more than "
                             f"model.max_len = {self.spec.max_len}")
        z = interleave(xs, ys)  # (batch, 2 * points, D)
        h = self.backbone.base_model(inputs_embeds=self.read_in(z)).last_hidden_state  # (batch, 2P, d_model)
        return self.read_out(h[:, ::2]).squeeze(-1)  # x positions: (batch, points, 1) -> (batch, points)

    def loss(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predictions over every prompt and position (a scalar)."""
        return ((self(xs, ys).float() - ys.float()) ** 2).mean()

    @torch.no_grad()
    def predict(self, xs: np.ndarray, ys: np.ndarray, info=None, batch_size: int = 256) -> np.ndarray:
        """The baselines' call: NumPy in, predictions of shape (batch, points) out, float64.

        Runs in eval mode (restored after) in chunks of ``batch_size`` prompts on the model's
        device. ``info`` is accepted and ignored, as by every non-oracle baseline.
        """
        xs = np.asarray(xs, dtype=np.float32)
        ys = np.asarray(ys, dtype=np.float32)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            out = [self(torch.from_numpy(xs[s]).to(device), torch.from_numpy(ys[s]).to(device)).float().cpu()
                   for s in (slice(i, i + batch_size) for i in range(0, len(xs), batch_size))]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(ys.shape)

    # --- save / load -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` (every weight) and ``vector_model.json`` (spec, dim, seed, name)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(weights, path / WEIGHTS_FILE)
        config = {"spec": self.spec.model_dump(mode="json"), "dim": self.dim, "seed": self.seed, "name": self.name}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "VectorModel":
        """A model written by :meth:`save`, in eval mode; nothing is unpickled."""
        path = Path(path)
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
            spec, dim = ModelSpec(**config["spec"]), config["dim"]
        except (OSError, ValueError, KeyError, TypeError) as e:  # missing file, bad JSON, bad spec
            raise ModelLoadError(f"{path} is not a saved VectorModel ({CONFIG_FILE} + {WEIGHTS_FILE}): {e}") from None
        try:
            weights = load_file(path / WEIGHTS_FILE)
        except Exception as e:  # safetensors raises its own error types on a missing or corrupt file
            raise ModelLoadError(f"{path}/{WEIGHTS_FILE} could not be read: {e}") from None
        model = cls(spec, dim, config.get("seed", 0), config.get("name", "transformer"))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ModelLoadError(f"{path}/{WEIGHTS_FILE} does not fit its config: missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]}")
        return model.to(device).eval()
