"""Figures of the task-vectors study."""

from __future__ import annotations

import numpy as np

from iclab.figures import plt


def _colors(n: int):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _marks(ax, marks: list[int]):
    for s in marks:
        ax.axvline(s, color="gray", ls="--", lw=0.9)


def loss_and_td(steps: np.ndarray, loss_by_basis: dict[str, np.ndarray], td: np.ndarray, layers: list[int],
                marks: list[int], token: str = "the last x"):
    """Left: eval loss per basis over training; right: mean TD per layer over training, read at
    ``token`` (for the title). Dashed lines: the marked steps of the representation panels."""
    fig, (ax_l, ax_t) = plt.subplots(1, 2, figsize=(11, 3.8))
    for (basis, loss), c in zip(loss_by_basis.items(), _colors(len(loss_by_basis))):
        ax_l.plot(steps, loss, "o-", ms=2.5, color=c, label=f"basis {basis}")
    _marks(ax_l, marks)
    ax_l.set(xlabel="training step", ylabel="MSE (all positions)", title="Loss per basis", yscale="log")
    ax_l.legend(fontsize=8)
    cmap = plt.get_cmap("viridis")
    for li, layer in enumerate(layers):
        ax_t.plot(steps, td[li], "-", color=cmap(li / max(1, len(layers) - 1)), label=f"layer {layer}")
    _marks(ax_t, marks)
    ax_t.set(xlabel="training step", ylabel="task decodability", title=f"TD per layer (at {token})",
             ylim=(0, 1.02))
    ax_t.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def embedding_panels(panels: dict[str, np.ndarray], labels: np.ndarray, title: str):
    """One scatter per panel (2-D embeddings (n, 2)), coloured by label (basis or task)."""
    names = list(panels)
    cols = min(len(names), 5)
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False)
    uniq = list(dict.fromkeys(labels.tolist()))
    colors = _colors(len(uniq))
    for ax, name in zip(axes.flat, names):
        e = panels[name]
        for u, c in zip(uniq, colors):
            m = labels == u
            ax.scatter(e[m, 0], e[m, 1], s=5, color=c, label=str(u), alpha=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, markerscale=2, title="basis" if str(uniq[0]).isdigit() else "task")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def td_profiles(profiles: dict[str, np.ndarray], layers: np.ndarray, title: str, chance: float | None = None):
    """Mean TD against layer, one line per condition (training step, shot count)."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for (name, td), c in zip(profiles.items(), _colors(len(profiles))):
        ax.plot(layers, td, "o-", ms=3, color=c, label=name)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
    ax.set(xlabel="layer", ylabel="task decodability", ylim=(0, 1.02), title=title)
    ax.set_xticks(layers if len(layers) <= 16 else layers[::2])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def error_vs_k(curves: dict[str, dict[str, np.ndarray]], normalizer: float):
    """Error against number of in-context examples, one panel per basis, one line per predictor."""
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 0.6, 3.4), squeeze=False, sharey=True)
    for ax, basis in zip(axes[0], names):
        preds = curves[basis]
        for (pred, e), c in zip(preds.items(), _colors(len(preds))):
            ax.plot(np.arange(len(e)), e, "-", lw=2.2 if pred == "transformer" else 1.2, color=c, label=pred)
        ax.set(title=f"basis {basis}", xlabel="in-context examples", yscale="log")
    axes[0][0].set_ylabel(f"squared error / {normalizer:g}")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def td_vs_accuracy(points: dict[str, list[tuple[float, float, str]]], r2: dict[str, float], *,
                   ylabel: str = "accuracy", unit_y: bool = True):
    """Scatter of (TD, score) per task and shot count (or checkpoint), one panel per family, with R²
    and the least-squares line. ``unit_y``: the score is a share in [0, 1] (accuracy)."""
    fams = list(points)
    fig, axes = plt.subplots(1, len(fams), figsize=(4.4 * len(fams), 3.8), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        pts = points[fam]
        tds = np.array([p[0] for p in pts])
        accs = np.array([p[1] for p in pts])
        ax.scatter(tds, accs, s=18)
        if len(pts) <= 40:  # beyond that the names hide the points
            for td, acc, name in pts:
                ax.annotate(name, (td, acc), fontsize=6, alpha=0.7)
        if len(pts) >= 2 and np.ptp(tds) > 0:
            slope, icpt = np.polyfit(tds, accs, 1)
            xs = np.linspace(tds.min(), tds.max(), 10)
            ax.plot(xs, slope * xs + icpt, "--", color="gray", lw=1)
        ax.set(xlabel="TD of the task (best layer)", ylabel=ylabel, xlim=(-0.02, 1.02), title=f"{fam}: R² = {r2[fam]:.2f}")
        if unit_y:
            ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def patching_bars(deltas: dict[str, dict[str, tuple[float, float]]], title: str):
    """Accuracy change from patching, true-task vector vs Null vector, per task; error bars:
    standard deviation over seeds. ``deltas[task] = {"task": (mean, sd), "null": (mean, sd)}``."""
    tasks = list(deltas)
    x = np.arange(len(tasks))
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(tasks), 3.6))
    for off, cond, c in ((-0.2, "task", "tab:green"), (0.2, "null", "tab:red")):
        ax.bar(x + off, [deltas[t][cond][0] for t in tasks], 0.4, yerr=[deltas[t][cond][1] for t in tasks],
               color=c, capsize=3, label="true task (positive)" if cond == "task" else "Null (negative)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, tasks, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="accuracy − unpatched", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def finetune_bars(results: dict[str, dict[str, float]], metric: str, title: str):
    """Before / first-n / last-n values of ``metric`` per family: ``results[family][condition]``."""
    fams = list(results)
    conds = list(next(iter(results.values())))
    x = np.arange(len(fams))
    w = 0.8 / len(conds)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(fams), 3.4))
    for i, (cond, c) in enumerate(zip(conds, _colors(len(conds)))):
        ax.bar(x + (i - (len(conds) - 1) / 2) * w, [results[f][cond] for f in fams], w, color=c, label=cond)
    ax.set_xticks(x, fams)
    ax.set(ylabel=metric, ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def over_checkpoints(names: list[str], td: dict[str, np.ndarray], accuracy: dict[str, np.ndarray]):
    """Best-layer mean TD and mean accuracy per family over a series of checkpoints (in order)."""
    x = np.arange(len(names))
    fig, (ax_t, ax_a) = plt.subplots(1, 2, figsize=(max(8.0, 1.1 * len(names) + 4), 3.6))
    for (fam, v), c in zip(td.items(), _colors(len(td))):
        ax_t.plot(x, v, "o-", color=c, label=fam)
        ax_a.plot(x, accuracy[fam], "o-", color=c, label=fam)
    for ax, what in ((ax_t, "best-layer mean TD"), (ax_a, "mean accuracy")):
        ax.set_xticks(x, [n if len(n) <= 18 else "…" + n[-17:] for n in names], rotation=30, ha="right",
                      fontsize=7)
        ax.set(ylabel=what, ylim=(-0.02, 1.02), title=f"{what} over checkpoints")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
