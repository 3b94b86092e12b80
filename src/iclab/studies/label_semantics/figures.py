"""Figures of the label-semantics study; each takes arrays and returns a matplotlib figure."""

from __future__ import annotations

import numpy as np

from iclab.figures import model_colors, plt, short_name

#: one colour per condition, the same in every figure
CONDITION_COLORS = {"zero-shot": "#7f7f7f", "gold": "#2ca02c", "random": "#1f77b4", "flipped": "#d62728",
                    "unrelated": "#9467bd", "no-labels": "#8c564b", "ood-inputs": "#ff7f0e"}


def accuracy_by_condition(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], conditions: list[str],
                          chance: dict[str, float], k: int, names: list[str] | None = None):
    """Bars of accuracy by condition, one panel per set; one bar colour per model, or per condition
    when there is one model. ``names`` are the conditions' names on the axis.

    ``panels[set][model] = (accuracy (len(conditions),), standard error (len(conditions),))``;
    zero-shot is the first condition; a dotted line marks chance (1 / classes).
    """
    models = list(next(iter(panels.values())))
    colors = model_colors(models)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 0.55 * len(conditions) * max(1, len(models)) / 2 + 2.5)
                                                      * len(panels), 3.6), sharey=True, squeeze=False)
    width = 0.8 / len(models)
    x = np.arange(len(conditions))
    for ax, (name, by_model) in zip(axes[0], panels.items()):
        for i, (m, (acc, se)) in enumerate(by_model.items()):
            color = colors[m] if len(models) > 1 else [CONDITION_COLORS.get(c, "#1f77b4") for c in conditions]
            ax.bar(x - 0.4 + width * (i + 0.5), acc, width, yerr=se, color=color, label=short_name(m),
                   capsize=2, error_kw=dict(lw=0.8))
        ax.axhline(chance[name], ls=":", color="black", lw=1)
        ax.set_xticks(x, names or conditions, rotation=35, ha="right", fontsize=8)
        ax.set(title=name, ylim=(0, 1.02))
    axes[0][0].set_ylabel(f"accuracy (k = {k}; zero-shot k = 0)")
    if len(models) > 1:
        axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def accuracy_vs_k(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], chance: float,
                  context: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
    """Accuracy against the number of demonstrations k, one line per condition, one panel per model
    (``panels[model][condition] = (ks, accuracy)``; zero-shot is drawn at k = 0 on every line's
    left). ``context[model]`` adds the flipped prompts scored against the flipped labels (dashed)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.5), sharey=True, squeeze=False)
    for ax, (model, lines) in zip(axes[0], panels.items()):
        for cond, (ks, acc) in lines.items():
            ax.plot(ks, acc, "o-" if cond != "zero-shot" else "s", ms=4, color=CONDITION_COLORS.get(cond), label=cond)
        if context and model in context:
            ks, acc = context[model]
            ax.plot(ks, acc, "o--", ms=3, color=CONDITION_COLORS["flipped"], label="flipped, vs flipped labels")
        ax.axhline(chance, ls=":", color="black", lw=1)
        ax.set(title=short_name(model), xlabel="demonstrations k", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def scale_curve(sizes: np.ndarray, lines: dict[str, np.ndarray], names: list[str], chance: float, k: int):
    """Accuracy (mean over sets) against parameters, one line per condition; ``lines[condition]``
    is (models,) in the order of ``sizes``."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    order = np.argsort(sizes)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for cond, acc in lines.items():
        ax.plot(sizes[order], acc[order], "o-", ms=4, color=CONDITION_COLORS.get(cond), label=cond)
    ax.set_xscale("log")
    # the models' own sizes as ticks: a log axis over less than a decade labels its minor ticks, unreadably
    ax.xaxis.set_major_locator(FixedLocator(sizes[order]))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{s / 1e6:,.0f}M" if s >= 1e6 else f"{s:,.0f}" for s in sizes[order]]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axhline(chance, ls=":", color="black", lw=1)
    for s, n in zip(sizes[order], np.array(names)[order]):
        ax.annotate(short_name(n), (s, 0.02), fontsize=6, rotation=90, ha="center")
    ax.set(xlabel="parameters", ylabel=f"accuracy (k = {k})", ylim=(-0.02, 1.02),
           title="Accuracy by condition against model size")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def over_training(curves: dict[str, tuple[np.ndarray, np.ndarray]], chance: float, k: int):
    """Accuracy at k demonstrations against the training step, one line per condition
    (``curves[name] = (steps, accuracy)``; the flipped prompts scored against the flipped labels
    are ``"flipped, vs flipped labels"``, dashed)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, (steps, acc) in curves.items():
        cond = name.split(",")[0]
        ax.plot(steps, acc, "--" if "," in name else "-", marker="o", ms=3, color=CONDITION_COLORS.get(cond),
                label=name)
    ax.axhline(chance, ls=":", color="black", lw=1)
    ax.set(xlabel="training step", ylabel=f"accuracy (k = {k})", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
