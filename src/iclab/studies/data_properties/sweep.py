"""The data-properties sweep report: ICL and IWL heat maps over burstiness × Zipf exponent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from iclab.runs.report import Figure, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import trial_summaries
from iclab.studies.data_properties import figures as figs
from iclab.studies.data_properties.config import model_label
from iclab.studies.data_properties.report import ICL, ICL_MARGIN, IWL, Results


def _trial_summary(path: Path) -> dict[str, Any] | None:
    """The main model's burstiness, Zipf exponent and final accuracies of one finished trial
    (None if it has no classification rows)."""
    run = Run(path)
    world = (yaml.safe_load(run.config_yaml) or {}).get("world", {})
    p, a = float(world.get("p_bursty", 0.9)), float(world.get("zipf_exponent", 0.0))
    res = Results(run.load_rows(), model_label(p))
    if not res.final:
        return None
    return {"p": p, "zipf": a, "icl": res.value("accuracy", ICL), "iwl": res.value("accuracy", IWL),
            "icl_chance": res.value("chance", ICL), "iwl_chance": res.value("chance", IWL),
            "peak": res.peak(ICL)[1] if res.trained else res.value("accuracy", ICL)}


def sweep_report(trials: list, save_figure: Callable[[Any, str], str]) -> list[Section]:
    """The sweep's figures: final ICL and IWL accuracy of each trial's main model on a grid of
    p_bursty × Zipf exponent, with the trend of each along its axis."""
    summaries = trial_summaries(trials, lambda t: _trial_summary(Path(t.path)))
    if not summaries:
        return []
    ps = sorted({s["p"] for s in summaries.values()})
    zs = sorted({s["zipf"] for s in summaries.values()})
    grids = {k: np.full((len(ps), len(zs)), np.nan) for k in ("icl", "iwl", "icl_chance", "iwl_chance")}
    for s in summaries.values():  # grids (p_bursty, zipf)
        for k, g in grids.items():
            g[ps.index(s["p"]), zs.index(s["zipf"])] = s[k]
    icl, iwl = grids["icl"], grids["iwl"]
    table = Table(["trial", "p_bursty", "Zipf α", "ICL", "ICL peak", "ICL chance", "IWL", "IWL chance"],
                  [[name, s["p"], s["zipf"], s["icl"], s["peak"], s["icl_chance"], s["iwl"], s["iwl_chance"]]
                   for name, s in summaries.items()],
                  caption="Final accuracy of each trial's main model (ICL: holdout classes with fresh labels; IWL: "
                          "trained classes absent from the context); ICL peak: the highest ICL accuracy over "
                          "training.")
    heat = save_figure(figs.sweep_heatmaps(ps, zs, icl, iwl), "sweep_heatmap")
    text = trends_text(ps, zs, icl, iwl, grids["icl_chance"], grids["iwl_chance"])
    return [Section("ICL and IWL over the grid", text, tables=[table]),
            Section("Heat maps over burstiness × Zipf exponent",
                    "Chan et al. (2022): ICL needs bursty data (it grows down the rows) and IWL needs skewed, "
                    "repeated classes (it grows along the columns); a Zipf exponent near 1 gives both.",
                    figures=[Figure(heat, "Final ICL (left) and IWL (right) accuracy by p_bursty and Zipf "
                                          "exponent α.")])]


def trends_text(ps: list[float], zs: list[float], icl: np.ndarray, iwl: np.ndarray, icl_chance: np.ndarray,
                iwl_chance: np.ndarray) -> str:
    """ICL from the least to the most bursty row and IWL from the smallest to the largest Zipf
    exponent, flagging what goes against Chan et al.: a trend the wrong way, or bursty data at a
    Zipf exponent near 1 (0.5 to 1.5) without both ICL and IWL well above chance. Every array is
    (p_bursty, zipf)."""
    out, warnings = [], []
    if len(ps) > 1:
        for j, a in enumerate(zs):
            lo, hi = icl[0, j], icl[-1, j]
            if np.isfinite(lo) and np.isfinite(hi):
                out.append(f"α = {a:g}: ICL {lo:.2f} at p_bursty = {ps[0]:g} → {hi:.2f} at {ps[-1]:g}")
                if hi < lo:
                    warnings.append(f"ICL should grow with burstiness (it falls at α = {a:g})")
    if len(zs) > 1:
        for i, p in enumerate(ps):
            lo, hi = iwl[i, 0], iwl[i, -1]
            if np.isfinite(lo) and np.isfinite(hi):
                out.append(f"p_bursty = {p:g}: IWL {lo:.2f} at α = {zs[0]:g} → {hi:.2f} at α = {zs[-1]:g}")
                if hi < lo:
                    warnings.append(f"IWL should grow with the Zipf exponent (it falls at p_bursty = {p:g})")
    for i, p in enumerate(ps):
        for j, a in enumerate(zs):
            if p >= 0.5 and 0.5 <= a <= 1.5 and np.isfinite(icl[i, j]) and np.isfinite(iwl[i, j]):
                c_icl, c_iwl = icl_chance[i, j], iwl_chance[i, j]
                if icl[i, j] < c_icl + ICL_MARGIN or iwl[i, j] < c_iwl + ICL_MARGIN:
                    warnings.append(f"Chan et al. find both ICL and IWL with bursty data and a Zipf exponent near 1; "
                                    f"at p_bursty = {p:g}, α = {a:g} ICL is {icl[i, j]:.2f} (chance {c_icl:.2f}) "
                                    f"and IWL {iwl[i, j]:.2f} (chance {c_iwl:.3f})")
    text = ("; ".join(out) + ".") if out else "One cell only."
    return text + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)
