"""Figures of the data-properties study (one run, and a sweep over burstiness × Zipf exponent)."""

from __future__ import annotations

import numpy as np

from iclab.figures import heatmap, plt, short_name

#: the panels of the curves over training: prompt set -> title
PANELS = {"fewshot-holdout": "ICL: holdout classes, fresh labels",
          "no-support": "IWL: trained classes, no support",
          "fewshot-trained": "Trained classes, fresh labels"}


def over_training(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], chance: dict[str, float]):
    """Accuracy against the training step, one panel per prompt set, one line per model.

    ``curves[model][set] = (steps, accuracy)``; ``chance[set]`` is drawn dashed.
    """
    sets = [s for s in PANELS if any(s in c for c in curves.values())]
    fig, axes = plt.subplots(1, len(sets), figsize=(3.8 * len(sets), 3.3), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], sets):
        for model, by_set in curves.items():
            if s in by_set:
                ax.plot(*by_set[s], "o-", ms=3, label=model)
        if s in chance:
            ax.axhline(chance[s], color="gray", ls="--", lw=1, label="chance")
        ax.set(title=PANELS[s], xlabel="training step", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def icl_vs_iwl(models: list[str], icl: np.ndarray, iwl: np.ndarray, chance_icl: float, chance_iwl: float):
    """Final ICL and IWL accuracy of each model, side by side (``icl``, ``iwl``: (model,))."""
    fig, ax = plt.subplots(figsize=(3.4 + 1.3 * len(models), 3.3))
    x = np.arange(len(models))
    ax.bar(x - 0.2, icl, 0.38, color="#1f77b4", label="ICL (holdout, fresh labels)")
    ax.bar(x + 0.2, iwl, 0.38, color="#ff7f0e", label="IWL (trained, no support)")
    ax.axhline(chance_icl, color="#1f77b4", ls="--", lw=1)
    ax.axhline(chance_iwl, color="#ff7f0e", ls="--", lw=1)
    ax.set_xticks(x, [short_name(m) for m in models])
    ax.set(ylabel="accuracy at the end", ylim=(0, 1.3), title="ICL against IWL (dashed: chance)")
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    return fig


def sweep_heatmaps(p_values: list[float], zipf_values: list[float], icl: np.ndarray, iwl: np.ndarray):
    """ICL and IWL accuracy over burstiness (rows) × Zipf exponent (columns); ``icl``, ``iwl``:
    (p_bursty, zipf), NaN where no trial finished."""
    fig, axes = plt.subplots(1, 2, figsize=(3.4 + 2.6 * len(zipf_values), 1.2 + 0.6 * len(p_values)),
                             squeeze=False)
    for ax, values, title in zip(axes[0], (icl, iwl), ("ICL (holdout, fresh labels)", "IWL (no support)")):
        im = heatmap(ax, values, title, xlabel="Zipf exponent α", ylabel="p_bursty" if ax is axes[0][0] else "")
        ax.set_xticks(range(len(zipf_values)), [f"{a:g}" for a in zipf_values])
        ax.set_yticks(range(len(p_values)), [f"{p:g}" for p in p_values])
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="accuracy")
    return fig
