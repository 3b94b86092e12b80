"""Figures of the graph-tracing study: PCA panels with the graph drawn, energy and accuracy
against context length, the per-layer energy heat map, semantic-conflict panels."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from iclab.figures import heatmap, plt


def _draw_graph(ax, xy: np.ndarray, edges: np.ndarray, colors: np.ndarray, names: list[str] | None,
                style: str = "-", edge_color: str = "0.55", cmap: str = "viridis") -> None:
    """Nodes at ``xy`` (n_nodes, 2) (NaN rows are absent), ``edges`` (n_edges, 2) as lines."""
    present = np.all(np.isfinite(xy), axis=1)
    for i, j in edges:
        if present[i] and present[j]:
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], style, color=edge_color, lw=1, zorder=1)
    ax.scatter(xy[present, 0], xy[present, 1], c=colors[present], cmap=cmap, s=55, zorder=2,
               edgecolors="black", linewidths=0.5, vmin=colors.min(), vmax=colors.max())
    if names is not None:
        for v in np.nonzero(present)[0]:
            ax.annotate(names[v], xy[v], fontsize=7, xytext=(3, 3), textcoords="offset points")


def pca_panels(coords: np.ndarray, contexts: list[int], edges: np.ndarray, colors: np.ndarray,
               names: list[str] | None, title: str, explained: np.ndarray | None = None):
    """One panel per context length: PC1 vs PC2 of the node means, the graph's edges drawn.

    ``coords`` is (n_panels, n_nodes, >= 2); ``colors`` (n_nodes,) a value per node (e.g. its
    spectral coordinate, so that an arrangement like the graph's shows as a smooth gradient).
    """
    n = len(contexts)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.3), squeeze=False)
    for k, (ax, c) in enumerate(zip(axes[0], contexts)):
        _draw_graph(ax, coords[k, :, :2], edges, colors, names)
        ev = "" if explained is None else f" ({100 * np.nansum(explained[k, :2]):.0f}% var.)"
        ax.set_title(f"context {c}{ev}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def energy_accuracy(contexts: np.ndarray, curves: dict[str, np.ndarray], energy: np.ndarray, energy_pca: np.ndarray,
                    transitions: dict[str, int | None], layer: int, train_length: int | None = None):
    """Rule following (``curves``: accuracy, neighbor_mass, chance and their no-backtrack
    forms, each (C,)) and normalised energies (full-dim and top-2 PCs, (C,)) against context
    length on one log-x axis; accuracy transitions dashed, the training length dotted."""
    fig, ax = plt.subplots(figsize=(9.5, 4))
    ax.plot(contexts, curves["accuracy"], "o-", ms=3, color="C0", label="rule-following accuracy")
    ax.plot(contexts, curves["neighbor_mass"], "s--", ms=3, color="C0", alpha=0.6, label="mass on neighbours")
    ax.plot(contexts, curves["chance"], ":", color="C0", alpha=0.7, label="chance (degree / nodes)")
    ax.plot(contexts, curves["accuracy_no_backtrack"], "o-", ms=3, color="C2",
            label="accuracy, stepping back excluded")
    ax.plot(contexts, curves["chance_no_backtrack"], ":", color="C2", alpha=0.7, label="its chance")
    ax.plot(contexts, energy, "o-", ms=3, color="C3", label=f"energy, full dim (layer {layer})")
    ax.plot(contexts, energy_pca, "^-", ms=3, color="C1", label=f"energy, top-2 PCs (layer {layer})")
    ax.axhline(1.0, color="C3", lw=0.6, alpha=0.4)
    for (name, t), color, y in zip(transitions.items(), ("C0", "C2"), (0.02, 0.09)):
        if t is not None:
            ax.axvline(t, color=color, ls="--", lw=1)
            ax.text(t, y, f" {name} transition c={t}", fontsize=7.5, va="bottom", color=color)
    if train_length is not None and train_length < contexts.max():
        ax.axvline(train_length, color="gray", ls=":", lw=1)
        ax.text(train_length, 1.02, " training length", fontsize=8, color="gray", va="bottom")
    ax.set_xscale("log")
    ax.set(xlabel="context length (walk tokens)", ylabel="accuracy / normalised energy",
           title="Rule following and representation energy against context length",
           ylim=(0, max(1.1, np.nanmax(np.r_[energy, energy_pca, 1.0]) + 0.05)))
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def energy_heatmaps(contexts: np.ndarray, layers: np.ndarray, energy: np.ndarray, energy_pca: np.ndarray):
    """Layer × context length heat maps of the normalised energy (full dim and top-2 PCs);
    ``energy`` and ``energy_pca`` are (C, L)."""
    n_layers = len(layers)
    fig, axes = plt.subplots(1, 2, figsize=(min(4 + 0.45 * len(contexts), 9) * 2, 1.4 + 0.3 * max(n_layers, 3)))
    vmax = float(np.nanmax(np.r_[energy.ravel(), energy_pca.ravel(), 1.0]))
    for ax, values, what in zip(axes, (energy, energy_pca), ("full dimension", "top-2 PCs")):
        im = heatmap(ax, values.T, f"normalised energy, {what}", xlabel="context length", ylabel="layer",
                     vmin=0.0, vmax=vmax, cmap="magma", annotate=False)
        if values.size <= 64:  # write the values in, leaving unmeasured cells blank
            for (ci, li), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(ci, li, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 * vmax else "black")
        ax.set_xticks(range(len(contexts)), [str(c) for c in contexts], rotation=60, fontsize=7)
        ax.set_yticks(range(n_layers), [str(l) for l in layers], fontsize=7 if n_layers > 12 else 9)
    fig.colorbar(im, ax=list(axes), shrink=0.85)
    return fig


def conflict_panels(coords: np.ndarray, contexts: list[int], ring_edges: np.ndarray, natural_edges: np.ndarray,
                    order: np.ndarray, names: list[str], title: str):
    """Semantic conflict: PC1-2 and PC3-4 of the node means at each context length.

    ``coords`` is (n_contexts, n_nodes, 4); solid edges are the in-context ring, dashed
    ones the pretrained order (Monday–Tuesday, ...); colour is the pretrained position
    ``order`` (n_nodes,). If the context wins, solid edges are short; if the pretrained
    order wins, dashed ones are.
    """
    n = len(contexts)
    fig, axes = plt.subplots(n, 2, figsize=(7.2, 3.2 * n), squeeze=False)
    for k, c in enumerate(contexts):
        for j, (a, b) in enumerate(((0, 1), (2, 3))):
            ax = axes[k, j]
            xy = coords[k][:, [a, b]]
            _draw_graph(ax, xy, natural_edges, order.astype(float), None, style="--", edge_color="C1", cmap="twilight")
            _draw_graph(ax, xy, ring_edges, order.astype(float), names, cmap="twilight")
            ax.set_title(f"context {c}: PC{a + 1} vs PC{b + 1}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].plot([], [], "-", color="0.55", label="in-context ring")
    axes[0, 0].plot([], [], "--", color="C1", label="pretrained order")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(steps: np.ndarray, accuracy: dict[int, np.ndarray], energy_pca: np.ndarray, layer: int):
    """Rule-following accuracy (stepping back excluded) at a few context lengths and the
    top-2-PC energy at the longest one, against training step."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, (c, acc) in enumerate(accuracy.items()):
        ax.plot(steps, acc, "o-", ms=3, color=plt.cm.viridis(k / max(len(accuracy) - 1, 1)),
                label=f"accuracy (no step back), context {c}")
    ax.plot(steps, energy_pca, "^--", ms=3, color="C1", label=f"energy top-2 PCs, layer {layer}, longest context")
    ax.set(xlabel="training step", ylabel="accuracy / normalised energy", title="Graph tracing over pretraining",
           ylim=(0, 1.1))
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    return fig


def sweep_curves(curves: dict[str, dict[str, np.ndarray]]):
    """One line per sweep trial: the top-2-PC energy of its figure layer (left) and its
    rule-following accuracy with stepping back excluded (right) against context length.
    ``curves[trial]`` holds ``contexts``, ``energy_pca`` and ``accuracy_no_backtrack``, each (C,)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, c) in enumerate(curves.items()):
        left.plot(c["contexts"], c["energy_pca"], "o-", ms=3, color=f"C{i}", label=name)
        right.plot(c["contexts"], c["accuracy_no_backtrack"], "o-", ms=3, color=f"C{i}", label=name)
    left.axhline(1.0, color="gray", lw=0.6, alpha=0.5)
    longest = max(float(np.max(c["contexts"])) for c in curves.values())
    for ax in (left, right):  # one x range, and no minor-tick labels crowding the log axis
        ax.set_xscale("log")
        ax.set_xlim(0.8, longest * 1.25)
        ax.xaxis.set_minor_formatter(NullFormatter())
    left.set( xlabel="context length (walk tokens)", ylabel="normalised energy, top-2 PCs",
             title="Representations (1 = no graph structure)", ylim=(0, 1.2))
    right.set(xlabel="context length (walk tokens)", ylabel="accuracy",
              title="Rule following, stepping back excluded", ylim=(0, 1.05))
    left.legend(fontsize=7.5)
    fig.tight_layout()
    return fig
