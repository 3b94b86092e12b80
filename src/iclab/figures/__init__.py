"""Plotting helpers shared by studies (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: reports are made on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
                     "axes.grid": True, "grid.alpha": 0.3, "font.size": 10})


def heatmap(ax, values: np.ndarray, title: str, xlabel: str = "head", ylabel: str = "layer",
            vmin: float | None = 0.0, vmax: float | None = 1.0, cmap: str = "viridis", annotate: bool = True):
    """A (rows, cols) heat map with integer ticks and, when small, the values written in."""
    im = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto", origin="upper")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.grid(False)
    if annotate and values.size <= 64:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if (vmax is not None and v < 0.6 * vmax) else "black")
    return im




def short_name(name: str) -> str:
    """A model's name for titles and legends: the last part of a path or hub name."""
    return str(name).rstrip("/").rsplit("/", 1)[-1] or str(name)


def model_colors(names) -> dict[str, str]:
    """One colour per model name, the same in every panel of a report (matplotlib's cycle, in order)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(dict.fromkeys(names))}


def training_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]):
    """Training loss (log scale), learning rate and gradient norm against the step, one line per
    model: ``curves[model][metric] = (steps, values)`` for metric in loss, lr, grad_norm."""
    colors = model_colors(curves)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, metric, title in zip(axes, ("loss", "lr", "grad_norm"),
                                 ("Training loss", "Learning rate", "Gradient norm (before clipping)")):
        for name, c in curves.items():
            if metric in c and len(c[metric][0]):
                ax.plot(*c[metric], color=colors[name], lw=1.2, label=name)
        ax.set(title=title, xlabel="training step")
    axes[0].set_yscale("log")
    if len(curves) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["plt", "heatmap", "model_colors", "short_name", "training_curves"]
