"""Figures of the causal tools, from their arrays alone (no model): patching heat maps,
attention patterns with token labels, per-head maps (AIE, direct logit attribution)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iclab.figures import heatmap, plt


def _symmetric(values: np.ndarray) -> float:
    m = float(np.nanmax(np.abs(values))) if values.size else 1.0
    return m if m > 0 else 1.0


def patching_heatmaps(resid: np.ndarray | None = None, heads: np.ndarray | None = None,
                      tokens: Sequence[str] | None = None, resid_site: str = "resid_pre", head_site: str = "z"):
    """The patching sweep's effects as heat maps, red where patching restores the clean answer.

    Parameters
    ----------
    resid : array (layer, pos), optional
        ``ActivationPatching`` arrays ``"resid"``.
    heads : array (layer, head), optional
        ``ActivationPatching`` arrays ``"heads"``.
    tokens : sequence of str, optional
        Labels of the positions (the clean prompt's tokens).

    Returns
    -------
    matplotlib Figure
    """
    panels = [(v, k) for v, k in ((resid, "resid"), (heads, "heads")) if v is not None]
    if not panels:
        raise ValueError("patching_heatmaps needs resid or heads")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (values, kind) in zip(axes[0], panels):
        m = _symmetric(values)
        if kind == "resid":
            im = heatmap(ax, values, f"patching {resid_site}: layer × position", xlabel="position",
                         vmin=-m, vmax=m, cmap="RdBu_r", annotate=values.size <= 64)
            if tokens is not None:
                ax.set_xticks(range(len(tokens)))
                ax.set_xticklabels([repr(t)[1:-1] for t in tokens], rotation=60, fontsize=7)
        else:
            im = heatmap(ax, values, f"patching attn.hook_{head_site}: layer × head", vmin=-m, vmax=m, cmap="RdBu_r",
                         annotate=values.size <= 64)
        fig.colorbar(im, ax=ax, shrink=0.8, label="restored share")
    fig.tight_layout()
    return fig


def head_map(values: np.ndarray, title: str, label: str = ""):
    """One (layer, head) heat map (AIE, direct logit attribution), centred at 0."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    m = _symmetric(values)
    im = heatmap(ax, values, title, vmin=-m, vmax=m, cmap="RdBu_r", annotate=values.size <= 64)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    fig.tight_layout()
    return fig


def attention_patterns(patterns: np.ndarray, tokens: Sequence[str], heads: np.ndarray | Sequence[tuple[int, int]]):
    """Chosen heads' patterns (n_heads, query, key) with the prompt's tokens on both axes.

    Parameters
    ----------
    patterns : array (n_heads, query, key)
        ``AttentionPatterns`` arrays ``"pattern"``.
    tokens : sequence of str
        ``AttentionPatterns`` arrays ``"tokens"``.
    heads : array (n_heads, 2)
        ``(layer, head)`` of each pattern.
    """
    n = len(patterns)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    T = patterns.shape[-1]
    size = max(3.0, 0.22 * T + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    labels = [repr(str(t))[1:-1] for t in tokens]
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        layer, head = (int(x) for x in heads[i])
        ax.imshow(patterns[i], vmin=0.0, vmax=1.0, cmap="Blues", aspect="equal")
        ax.set_title(f"layer {layer}, head {head}")
        ax.set_xticks(range(T))
        ax.set_yticks(range(T))
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.grid(False)
    fig.tight_layout()
    return fig


__all__ = ["attention_patterns", "head_map", "patching_heatmaps"]
