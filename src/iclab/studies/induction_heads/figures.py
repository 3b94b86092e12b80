"""Figures of the induction-heads study."""

from __future__ import annotations

import numpy as np

from iclab.figures import heatmap, model_colors, plt


def phase_change(curves: dict[str, dict[str, np.ndarray]], transitions: dict[str, int | None],
                 threshold: float | None = None):
    """ICL score (left) and best induction score (right) against training step, per model;
    the transition step of each model that shows the phase change marked by a dashed line,
    the phase-change threshold by a dotted one."""
    fig, (ax_icl, ax_ind) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = model_colors(curves)
    for name, c in curves.items():
        color = colors[name]
        ax_icl.plot(c["step"], c["icl_score"], "o-", ms=3, color=color, label=name)
        ax_ind.plot(c["step"], c["induction_score"], "o-", ms=3, color=color, label=name)
        t = transitions.get(name)
        if t is not None:
            for ax in (ax_icl, ax_ind):
                ax.axvline(t, color=color, ls="--", lw=1)
    ax_icl.set(title="In-context learning score (loss late − loss early)", xlabel="training step",
               ylabel="nats (lower = more ICL)")
    if threshold is not None:
        ax_ind.axhline(threshold, color="gray", ls=":", lw=1)
    ax_ind.set(title="Best induction score over heads", xlabel="training step", ylabel="attention", ylim=(0, 1.02))
    ax_icl.legend()
    ax_ind.legend(title="dashed: transition")
    fig.tight_layout()
    return fig


def score_heatmaps(scores: dict[str, np.ndarray], metric: str):
    """One layer × head heat map of ``metric`` per model."""
    fig, axes = plt.subplots(1, len(scores), figsize=(3.6 * len(scores) + 0.8, 0.9 + 0.7 * max(
        s.shape[0] for s in scores.values())), squeeze=False)
    for ax, (name, s) in zip(axes[0], scores.items()):
        im = heatmap(ax, s, f"{name}: {metric.replace('_', ' ')}")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    return fig


def ablation_bars(results: dict[str, tuple[float, float, str]]):
    """Intact vs ablated ICL score per model; ``results[name] = (intact, ablated, heads text)``."""
    names = list(results)
    x = np.arange(len(names))
    intact = [results[n][0] for n in names]
    ablated = [results[n][1] for n in names]
    fig, ax = plt.subplots(figsize=(1.8 + 1.8 * len(names), 3.6))
    ax.bar(x - 0.2, intact, 0.4, label="intact")
    ax.bar(x + 0.2, ablated, 0.4, label="induction heads ablated")
    ax.set_xticks(x, [f"{n}\n{results[n][2]}" for n in names], fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(ylabel="ICL score (nats)", title="Ablating the induction heads")
    ax.legend()
    fig.tight_layout()
    return fig


def loss_by_position(curves: dict[str, dict[str, np.ndarray]], half: int | None):
    """Mean next-token loss at each position of the repeated prompts, per model: ``curves[model]``
    maps a condition (e.g. "intact", "ablated") to a curve; one colour per model, one line
    style per condition."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colors = model_colors(curves)
    for name, conditions in curves.items():
        for (cond, c), style in zip(conditions.items(), ("-", "--", ":")):
            ax.plot(np.arange(len(c)), c, style, color=colors[name], label=f"{name} {cond}")
    if half:
        ax.axvline(half, color="gray", ls=":", lw=1)
        ax.text(half, ax.get_ylim()[1], " second copy", va="top", fontsize=8, color="gray")
    ax.set(xlabel="token position", ylabel="loss (nats)", title="Loss by position on repeated random tokens")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
