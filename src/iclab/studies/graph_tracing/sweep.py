"""The graph-tracing sweep report: finding 1 (the node representations reorganise into the
graph's shape as the context grows) for every trial, side by side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from iclab.config import validate
from iclab.probes.graph_tracing import pick_layer
from iclab.runs.report import Figure, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import trial_summaries
from iclab.studies.graph_tracing import figures as figs
from iclab.studies.graph_tracing.config import GraphTracingConfig
from iclab.studies.graph_tracing.report import REORGANISE_DROP, REORGANISED_BELOW, reorganisation


def _trial_summary(path: Path) -> dict[str, Any] | None:
    """Graph, model, figure layer, the reorganisation numbers and the curves of one finished
    trial (None if it has no trace)."""
    run = Run(path)
    cfg = validate(GraphTracingConfig, yaml.safe_load(run.config_yaml) or {}, str(Path(path) / "config.yaml"))
    model = run.meta.get("model")
    name = "trace-words" if model else "trace-trained"
    if not (Path(path) / "arrays" / f"{name}.npz").is_file():
        return None
    a = run.load_arrays(name)
    li = pick_layer(a, cfg.pretrained.figure_layer if model else cfg.probe.figure_layer)
    r = reorganisation(a, li)
    if r is None:
        return None
    return {"kind": cfg.graph.kind, "model": Path(model).name if model else f"trained {cfg.model.n_layers}-layer",
            "layer": int(a["layers"][li]), **r, "accuracy": float(a["accuracy_no_backtrack"][-1]),
            "curves": {"contexts": a["context_lengths"], "energy_pca": a["energy_pca"][:, li],
                       "accuracy_no_backtrack": a["accuracy_no_backtrack"]}}


def sweep_text(summaries: dict[str, dict[str, Any]]) -> str:
    """Which trials reorganise, in their own numbers; a trial that does not is flagged."""
    parts = []
    for name, s in summaries.items():
        said = (f"{name} ({s['kind']}, {s['model']}, layer {s['layer']}): top-2-PC energy {s['e0']:.2f} at context "
                f"{s['c0']} → {s['e_low']:.2f} at {s['c_low']}")
        parts.append(said + ("" if s["reorganised"] else " ⚠ no reorganisation"))
    n = sum(s["reorganised"] for s in summaries.values())
    head = (f"{n} of {len(summaries)} trials reorganise (a fall of at least {REORGANISE_DROP:g} to below "
            f"{REORGANISED_BELOW:g}). ")
    if n < len(summaries):
        head += "⚠ Contradicts the expected finding (Park et al.: the representations take the graph's shape as the " \
                "context grows) for the trials marked. "
    return head + "; ".join(parts) + "."


def sweep_report(trials: list, save_figure: Callable[[Any, str], str]) -> list[Section]:
    """The sweep's figure (every trial's top-2-PC energy and accuracy against context length),
    a table of the reorganisation numbers, and what the sweep found."""
    summaries = trial_summaries(trials, lambda t: _trial_summary(Path(t.path)))
    if not summaries:
        return []
    table = Table(["trial", "graph", "model", "layer", "first context", "energy there", "lowest at", "lowest energy",
                   "accuracy, no step back (longest)", "reorganised"],
                  [[name, s["kind"], s["model"], s["layer"], s["c0"], s["e0"], s["c_low"], s["e_low"], s["accuracy"],
                    "yes" if s["reorganised"] else "no"] for name, s in summaries.items()],
                  caption="Top-2-PC normalised energy of each trial's figure layer (1 = no graph structure); first "
                          "context: the first with most nodes in the window.")
    fig = save_figure(figs.sweep_curves({n: s["curves"] for n, s in summaries.items()}), "sweep_energy")
    return [Section("Finding 1 over the sweep", sweep_text(summaries), tables=[table]),
            Section("Energy and rule following against context", figures=[Figure(
                fig, "Each trial's figure layer: top-2-PC energy (left) and rule following with stepping back "
                "excluded (right) against context length.")])]
