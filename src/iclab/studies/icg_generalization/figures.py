"""Figures of the icg-generalization study (one run, and a sweep over the grid)."""

from __future__ import annotations

from typing import Any

import numpy as np

from iclab.figures import plt, short_name

SET_NAMES = {"R": "R (repeated)", "C": "C (non-repeated)", "U": "U (unseen)"}
SET_COLORS = {"R": "#1f77b4", "C": "#ff7f0e", "U": "#2ca02c"}
_STYLE = {"trained": dict(ls="-", marker="o"), "untrained": dict(ls=":", marker="."),
          "Bayes-optimal": dict(ls="--", marker=None, color="black")}


def ictr_vs_k(curves: dict[str, dict[str, np.ndarray]]):
    """One panel per topic set: ICTR against k for each model (``curves[model][set]`` is
    an array (k, 4) of k, ictr, lo, hi); a band for the 95% interval."""
    sets = [s for s in SET_NAMES if any(s in c for c in curves.values())]
    first, last = ["trained", "untrained"], ["Bayes-optimal"]
    order = [m for m in first if m in curves] + [m for m in curves if m not in first + last] + \
        [m for m in last if m in curves]
    curves = {m: curves[m] for m in order}
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.3), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], sets):
        for model, c in curves.items():
            if s not in c or not len(c[s]):
                continue
            a = c[s]
            style = _STYLE.get(model, dict(ls="-", marker="o"))
            line, = ax.plot(a[:, 0], a[:, 1], ms=4, label=short_name(model), **style)
            if model != "Bayes-optimal":
                ax.fill_between(a[:, 0], a[:, 2], a[:, 3], color=line.get_color(), alpha=0.15, lw=0)
        ax.set(title=SET_NAMES[s], xlabel="shots k", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("ICTR")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def ictr_over_training(ictr: dict[str, tuple[np.ndarray, np.ndarray]], bayes: dict[str, float],
                       loss: tuple[np.ndarray, np.ndarray], k: int):
    """ICTR at k shots per topic set (left; ``ictr[set] = (steps, values)``, dashed: the Bayes-optimal
    value) and the training loss (right; ``(steps, values)``) against the step."""
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.3))
    for s in SET_NAMES:
        if s in ictr and len(ictr[s][0]):
            ax.plot(*ictr[s], "o-", ms=3, color=SET_COLORS[s], label=SET_NAMES[s])
        if s in bayes:
            ax.axhline(bayes[s], color=SET_COLORS[s], ls="--", lw=0.8)
    ax.set(title=f"ICTR at k = {k} (dashed: Bayes-optimal)", xlabel="training step", ylabel="ICTR",
           ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    if len(loss[0]):
        ax_loss.plot(*loss, color="gray")
    ax_loss.set(title="Training loss", xlabel="training step", ylabel="nats per token")
    fig.tight_layout()
    return fig


def sweep_heatmaps(cells: list[tuple[str, int, float, dict[str, float]]]):
    """ICTR heat maps over M (rows) × r_R (columns); each cell split into R | C | U.

    ``cells`` holds (model group, M, r_R, {set: ICTR}); one panel per model group.
    """
    groups = list(dict.fromkeys(c[0] for c in cells))
    Ms = sorted({c[1] for c in cells})
    rs = sorted({c[2] for c in cells})
    fig, axes = plt.subplots(len(groups), 1, figsize=(1.6 + 1.5 * len(rs) * 1.0, 0.9 + 0.8 * len(Ms) * len(groups)),
                             squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        grid = np.full((len(Ms), 3 * len(rs)), np.nan)  # (M, r_R × {R, C, U})
        for group, M, r, vals in cells:
            if group == g:
                for j, s in enumerate("RCU"):
                    grid[Ms.index(M), 3 * rs.index(r) + j] = vals.get(s, np.nan)
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{'RCU'[j % 3]}\n{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.6 else "black")
        for b in range(1, len(rs)):
            ax.axvline(3 * b - 0.5, color="white", lw=3)
        ax.set_xticks([3 * i + 1 for i in range(len(rs))], [f"r_R = {r:g}" for r in rs])
        ax.set_yticks(range(len(Ms)), [f"M = {M}" for M in Ms])
        ax.set_title(f"model {g}: ICTR of R | C | U")
        ax.grid(False)
    fig.colorbar(im, ax=list(axes[:, 0]), shrink=0.8, label="ICTR")
    return fig


def sweep_ictr_vs_k(curves: dict[str, dict[str, np.ndarray]]):
    """One panel per topic set: ICTR against k for every trial (``curves[trial][set]`` (k, 4))."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5), sharey=True)
    for ax, s in zip(axes, SET_NAMES):
        for trial, c in curves.items():
            if s in c:
                ax.plot(c[s][:, 0], c[s][:, 1], "o-", ms=3, label=trial)
        ax.set(title=SET_NAMES[s], xlabel="shots k", ylim=(-0.02, 1.02))
    axes[0].set_ylabel("ICTR")
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    return fig


def phase_plot(cells: list[tuple[str, int, float, dict[str, float]]]):
    """ICTR against r_R, one panel per M, a line per (topic set, model group)."""
    Ms = sorted({c[1] for c in cells})
    groups = list(dict.fromkeys(c[0] for c in cells))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(Ms), figsize=(3.8 * len(Ms), 3.3), sharey=True, squeeze=False)
    for ax, M in zip(axes[0], Ms):
        for gi, g in enumerate(groups):
            pts = sorted((c[2], c[3]) for c in cells if c[1] == M and c[0] == g)
            if not pts:
                continue
            for s in SET_NAMES:
                ax.plot([p[0] for p in pts], [p[1].get(s, np.nan) for p in pts], marker="o", ms=3,
                        ls=styles[gi % len(styles)], color=SET_COLORS[s], label=f"{s} · {g}")
        ax.set(title=f"M = {M}", xlabel="r_R (share of repeated topics)", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("ICTR")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def ictr_against(panels: dict[str, list[tuple[Any, dict[str, float], dict[str, float]]]], axis: str,
                 mark_below: float | None = None):
    """ICTR of R, C and U (solid; dashed: Bayes-optimal) against one grid axis, one panel per group.

    ``panels[group]`` holds (x, {set: ICTR}, {set: Bayes-optimal ICTR}) per trial; the x values
    are spaced evenly (W from 4 to 105 stays readable). ``mark_below``: a dotted line just
    before the first x at or above it (the window of a paragraph plus separator).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, (group, pts) in zip(axes[0], panels.items()):
        pts = sorted(pts, key=lambda p: p[0])
        xs = np.arange(len(pts))
        for s in SET_NAMES:
            if any(s in p[1] for p in pts):
                ax.plot(xs, [p[1].get(s, np.nan) for p in pts], "o-", ms=4, color=SET_COLORS[s], label=SET_NAMES[s])
            if any(s in p[2] for p in pts):
                ax.plot(xs, [p[2].get(s, np.nan) for p in pts], ls="--", lw=0.8, color=SET_COLORS[s])
        if mark_below is not None:
            first = next((i for i, p in enumerate(pts) if p[0] >= mark_below), None)
            if first:
                ax.axvline(first - 0.5, color="gray", ls=":", lw=1)
                ax.text(first - 0.45, 0.03, f"≥ {mark_below:g}", fontsize=7, color="gray", va="bottom")
        ax.set_xticks(xs, [f"{p[0]:g}" for p in pts])
        ax.set(title=group, xlabel=axis, ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("ICTR (dashed: Bayes-optimal)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
