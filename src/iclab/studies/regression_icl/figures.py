"""Figures of the regression-icl study: every predictor keeps one colour across panels."""

from __future__ import annotations

import numpy as np

from iclab.figures import plt

#: a colour per predictor label, fixed across every panel and figure; others take the cycle's rest in order
FIXED_COLORS = {"transformer": "black", "least-squares": "#1f77b4", "ridge": "#17becf", "averaging": "#2ca02c",
                "3-nn": "#9467bd", "lasso": "#d62728", "zero": "#7f7f7f", "tree-4": "#8c564b", "tree": "#e377c2",
                "boosting": "#ff7f0e", "nn-gd": "#bcbd22"}
_SPARE = ["#ff7f0e", "#bcbd22", "#8c564b", "#e377c2", "#17becf", "#d62728", "#9467bd"]

Curve = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]  # (n examples, mean, lo, hi)


def colors_for(labels: list[str]) -> dict[str, str]:
    """One colour per label: the fixed ones, then spare colours in the order the labels come."""
    out, spare = {}, iter(_SPARE * 4)
    for label in labels:
        out[label] = FIXED_COLORS.get(label) or next(c for c in spare if c not in out.values())
    return out


def _style(label: str) -> dict:
    if label == "transformer":
        return {"lw": 2.4, "zorder": 5}
    if label == "zero":
        return {"lw": 1.0, "ls": ":"}
    return {"lw": 1.3}


#: the lowest error the log axes show: least squares without label noise is exact after d examples (~1e-15),
#: which would squeeze every other curve into the top of the panel
FLOOR = 1e-4


def _floor(ax, curves) -> None:
    """Start the log axis at half the lowest positive mean, but not below FLOOR."""
    lows = [float(np.min(c[1][c[1] > 0])) for c in curves if (c[1] > 0).any()]
    if lows:
        ax.set_ylim(bottom=max(FLOOR, 0.5 * min(lows)))


def _mark_d(ax, dim: int):
    ax.axvline(dim, color="gray", ls="--", lw=0.8)
    ax.text(dim, 1.0, " n = d", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="gray")


def error_curves(curves: dict[str, Curve], colors: dict[str, str], dim: int, title: str, ylabel: str):
    """Error against the number of in-context examples, one line per predictor with its band."""
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for label, (n, mean, lo, hi) in curves.items():
        ax.plot(n, mean, color=colors[label], label=label, **_style(label))
        if lo is not None and label != "zero":
            ax.fill_between(n, lo, hi, color=colors[label], alpha=0.18, lw=0)
    _mark_d(ax, dim)
    ax.set(xlabel="in-context examples n", ylabel=ylabel, title=title, yscale="log")
    _floor(ax, curves.values())
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def shift_panels(panels: dict[str, dict[str, Curve]], colors: dict[str, str], dim: int, ylabel: str):
    """One panel per shift: error against n for each predictor (with its ±1.96 SE band)."""
    names = list(panels)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for label, (n, mean, lo, hi) in panels[name].items():
            ax.plot(n, mean, color=colors[label], label=label, **_style(label))
            if lo is not None and label != "zero":
                ax.fill_between(n, lo, hi, color=colors[label], alpha=0.18, lw=0)
        _mark_d(ax, dim)
        ax.set_yscale("log")
        _floor(ax, panels[name].values())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("in-context examples n", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def probe_r2(r2: dict[str, dict[str, dict[int, np.ndarray]]], layers: np.ndarray, target_colors: dict[str, str],
             token_names: dict[str, str]):
    """Held-out R² of the linear probe per layer: one panel per token read, one line per target; solid:
    end of training, dashed: step 0 (``r2[token][target][step]`` of shape (layers,))."""
    fig, axes = plt.subplots(1, len(r2), figsize=(5.2 * len(r2), 3.8), squeeze=False, sharey=True)
    low = min(float(np.nanmin(v)) for by_t in r2.values() for by_s in by_t.values() for v in by_s.values())
    for ax, (token, by_target) in zip(axes[0], r2.items()):
        for target, by_step in by_target.items():
            steps = sorted(by_step)
            for s in steps:
                final = s == steps[-1]
                ax.plot(layers, by_step[s], "o-" if final else "o--", ms=3, color=target_colors[target],
                        alpha=1.0 if final else 0.5, label=f"{target} (step {s})")
        ax.axhline(0, color="gray", lw=0.8)
        ax.set(xlabel="layer", title=f"read at {token_names[token]}",
               ylim=(max(-0.5, min(-0.1, low - 0.05)), 1.02))  # R² far below 0 (no linear read-out) cut at -0.5
        ax.set_xticks(layers)
    axes[0, 0].set_ylabel("held-out R²")
    axes[0, -1].legend(fontsize=7, ncol=2)
    fig.suptitle("Linear probe of the hidden state for weight vectors fitted to the examples", fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(steps: np.ndarray, model: dict[str, np.ndarray], refs: dict[str, dict[str, float]],
                    colors: dict[str, str]):
    """The model's error at a few ``n`` over training (``model[name]`` of shape (steps,)), with the
    baselines' final errors at the same ``n`` as horizontal lines (``refs[name][label]``)."""
    fig, axes = plt.subplots(1, len(model), figsize=(3.8 * len(model), 3.3), squeeze=False)
    for ax, (name, values) in zip(axes[0], model.items()):
        ax.plot(steps, values, "o-", ms=2.5, color=colors["transformer"], label="transformer")
        for label, v in refs[name].items():
            ax.axhline(v, color=colors[label], lw=1.0, ls="--", label=label)
        ax.set(xlabel="training step", title=name, ylim=(0, None))
    axes[0, 0].set_ylabel("normalised squared error")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
