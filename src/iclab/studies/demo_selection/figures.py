"""Figures of the demo-selection study; each takes arrays and returns a matplotlib figure."""

from __future__ import annotations

import numpy as np

from iclab.figures import plt, short_name

METHOD_STYLES = {"random": dict(color="#7f7f7f", marker="o"), "knn": dict(color="#1f77b4", marker="s"),
                 "bm25": dict(color="#2ca02c", marker="^")}
METHOD_NAMES = {"random": "random", "knn": "kNN (embeddings)", "bm25": "BM25"}


Lines = dict[str, tuple[np.ndarray, np.ndarray]]


def accuracy_vs_k(grid: dict[str, dict[str, Lines]], zero: dict[str, dict[str, float]], chance: dict[str, float]):
    """Accuracy against k by method: one row of panels per model, one panel per set.

    ``grid[model][set][method] = (ks, accuracy)``; ``zero[model][set]`` is the zero-shot accuracy
    (a grey square at k = 0); ``chance[set]`` a dotted line.
    """
    models = list(grid)
    sets = list(next(iter(grid.values())))
    fig, axes = plt.subplots(len(models), len(sets), figsize=(3.4 * len(sets), 3.0 * len(models)), sharey=True,
                             squeeze=False)
    for r, m in enumerate(models):
        for c, t in enumerate(sets):
            ax = axes[r][c]
            for method, (ks, acc) in grid[m][t].items():
                ax.plot(ks, acc, "-", ms=4, label=METHOD_NAMES.get(method, method), **METHOD_STYLES.get(method, {}))
            ax.plot([0], [zero[m][t]], "s", color="black", ms=4, label="zero-shot")
            ax.axhline(chance.get(t, np.nan), ls=":", color="black", lw=1)
            ax.set_xscale("symlog", linthresh=1, linscale=0.5)
            ks = sorted({0, *[int(k) for v in grid[m][t].values() for k in v[0]]})
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set(title=f"{t}" + (f" — {short_name(m)}" if len(models) > 1 else ""), ylim=(-0.02, 1.02))
            if r == len(models) - 1:
                ax.set_xlabel("demonstrations k")
        axes[r][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def order_sensitivity(panels: dict[str, dict[str, dict[str, np.ndarray | float]]], k: int):
    """Accuracy over random orders of the same demonstrations, one panel per (model, set) label:
    ``panels[label][method] = {"perms": (P,), "ranked": float, "reversed": float or nan}``. Dots:
    each permutation; star: the method's own order (most similar last); triangle: reversed."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, (label, methods) in zip(axes[0], panels.items()):
        for i, (method, v) in enumerate(methods.items()):
            style = METHOD_STYLES.get(method, {})
            perms = np.asarray(v["perms"])
            jitter = np.linspace(-0.15, 0.15, len(perms)) if len(perms) > 1 else np.zeros(len(perms))
            ax.plot(i + jitter, perms, "o", ms=3, alpha=0.6, color=style.get("color"))
            if len(perms):
                ax.plot([i - 0.25, i + 0.25], [perms.mean()] * 2, "-", color=style.get("color"), lw=1)
            ax.plot([i], [v["ranked"]], "*", ms=10, color=style.get("color"), mec="black", mew=0.5)
            if np.isfinite(v.get("reversed", np.nan)):
                ax.plot([i], [v["reversed"]], "v", ms=6, color=style.get("color"), mec="black", mew=0.5)
        ax.set_xticks(range(len(methods)), [METHOD_NAMES.get(m, m) for m in methods], rotation=20, fontsize=8)
        ax.set(title=label, ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel(f"accuracy (k = {k})")
    fig.tight_layout()
    return fig


def label_match(lines: dict[str, tuple[np.ndarray, np.ndarray]], chance: float):
    """The share of chosen demonstrations that have the query's label, against k, one line per method."""
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    for method, (ks, v) in lines.items():
        ax.plot(ks, v, "-", ms=4, label=METHOD_NAMES.get(method, method), **METHOD_STYLES.get(method, {}))
    ax.axhline(chance, ls=":", color="black", lw=1)
    ax.set(xlabel="demonstrations k", ylabel="share with the query's label", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
