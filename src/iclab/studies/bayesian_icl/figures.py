"""Figures of the bayesian-icl study; each takes arrays and returns a matplotlib figure."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from iclab.figures import plt

#: line style of each predictor in the accuracy-vs-k panels
STYLES = {
    "model": dict(ls="-", marker="o", color="#1f77b4"),
    "transformer": dict(ls="-", marker="o", color="#1f77b4"),
    "LSTM": dict(ls="-", marker="s", color="#ff7f0e"),
    "untrained": dict(ls=":", marker=".", color="#7f7f7f"),
    "Bayes-optimal": dict(ls="--", marker=None, color="black"),
    "Bayes-optimal (all concepts)": dict(ls=(0, (1, 1)), marker=None, color="#d62728"),
    "pretraining LM": dict(ls="-.", marker=None, color="#2ca02c"),
}
LENGTH_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def _k_axis(ax, ks: np.ndarray) -> None:
    """Shots on a symmetric log axis, so that k = 0 (zero-shot) sits left of k = 1."""
    ax.set_xscale("symlog", linthresh=1, linscale=0.5)
    ax.set_xticks(ks, [str(int(k)) for k in ks])
    ax.set_xlabel("examples in the prompt k")


def accuracy_vs_k(panels: dict[int, dict[str, np.ndarray]], title: str = "l"):
    """One panel per example length l: accuracy against k for each predictor.

    ``panels[l][name]`` is an array (k, 2) of (k, accuracy); names are keys of :data:`STYLES`.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, (l, lines) in zip(axes[0], panels.items()):
        ks = None
        for name, a in lines.items():
            ax.plot(a[:, 0], a[:, 1], ms=4, label=name, **STYLES.get(name, dict(ls="-", marker="o")))
            ks = a[:, 0] if ks is None or len(a) > len(ks) else ks
        _k_axis(ax, ks)
        ax.set(title=f"{title} = {l}", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("in-context accuracy")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def prompt_sets(panels: dict[str, dict[int, dict[str, np.ndarray]]]):
    """One panel per prompt set: the model's accuracy against k for each l (solid) and the
    Bayes-optimal predictor of the pretraining prior (dashed, same colour); on unseen concepts
    also the Bayes-optimal predictor that knows every concept (dotted).

    ``panels[set][l][name]`` is an array (k, 2) of (k, accuracy), names "model",
    "Bayes-optimal" and optionally "Bayes-optimal (all concepts)".
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (name, by_l) in zip(axes[0], panels.items()):
        ks = None
        for (l, lines), color in zip(by_l.items(), LENGTH_COLORS):
            a = lines["model"]
            ax.plot(a[:, 0], a[:, 1], "o-", ms=3, color=color, label=f"model, l = {l}")
            b = lines["Bayes-optimal"]
            ax.plot(b[:, 0], b[:, 1], "--", color=color, lw=1)
            if "Bayes-optimal (all concepts)" in lines:
                c = lines["Bayes-optimal (all concepts)"]
                ax.plot(c[:, 0], c[:, 1], ":", color=color, lw=1)
            ks = a[:, 0]
        _k_axis(ax, ks)
        ax.set(title=name, ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("in-context accuracy")
    handles, _ = axes[0][0].get_legend_handles_labels()
    handles += [Line2D([], [], ls="--", color="black", lw=1, label="Bayes-optimal (pretraining prior)"),
                Line2D([], [], ls=":", color="black", lw=1, label="Bayes-optimal (all concepts)")]
    axes[0][0].legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def zero_vs_few_shot(bars: dict[int, dict[str, np.ndarray]], ks: list[int]):
    """Grouped bars per example length l: accuracy at the first few k, model and Bayes-optimal.

    ``bars[l]["model"]`` and ``bars[l]["Bayes-optimal"]`` are arrays (len(ks),).
    """
    ls = list(bars)
    fig, ax = plt.subplots(figsize=(2.8 + 1.7 * len(ls), 3.4))
    width = 0.8 / len(ks)
    for i, k in enumerate(ks):
        x = np.arange(len(ls)) + (i - (len(ks) - 1) / 2) * width
        ax.bar(x, [bars[l]["model"][i] for l in ls], width * 0.95, label=f"model, k = {k}",
               color=plt.cm.Blues(0.35 + 0.55 * i / max(1, len(ks) - 1)))
        ax.scatter(x, [bars[l]["Bayes-optimal"][i] for l in ls], marker="_", s=200, color="black", zorder=3,
                   label="Bayes-optimal" if i == 0 else None)
    ax.set_xticks(np.arange(len(ls)), [f"l = {l}" for l in ls])
    ax.set(ylabel="in-context accuracy", ylim=(0, 1.05), title="Zero-shot (k = 0) against few-shot")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def over_training(curves: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]], loss: tuple[np.ndarray, np.ndarray]):
    """Accuracy on in-distribution prompts against the training step (left; ``curves[(l, k)] =
    (steps, values)``, one colour per l, dotted for k = 0) and the training loss (right)."""
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.4))
    colors = {l: LENGTH_COLORS[i % len(LENGTH_COLORS)] for i, l in enumerate(dict.fromkeys(l for l, _ in curves))}
    for (l, k), (steps, values) in curves.items():
        ax.plot(steps, values, "o:" if k == 0 else "o-", ms=3, color=colors[l], label=f"l = {l}, k = {k}")
    ax.set(title="In-context accuracy over training", xlabel="training step", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, ncol=2)
    if len(loss[0]):
        ax_loss.plot(*loss, color="gray")
    ax_loss.set(title="Training loss", xlabel="training step", ylabel="nats per token")
    fig.tight_layout()
    return fig
