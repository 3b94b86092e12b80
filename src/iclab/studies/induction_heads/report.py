"""The induction-heads report, from the stored run: rows over training and the final arrays."""

from __future__ import annotations

import numpy as np

from iclab.probes.induction import top_heads
from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.induction_heads import figures as figs
from iclab.studies.common import training_section
from iclab.studies.induction_heads.config import InductionHeadsConfig


def transition_step(steps: np.ndarray, best_scores: np.ndarray) -> int | None:
    """First step at which the best induction score passes halfway between its initial
    value and its final value; None if it never rises by at least 0.2."""
    lo, hi = best_scores[0], best_scores[-1]
    if hi - lo < 0.2:
        return None
    return int(steps[np.argmax(best_scores >= (lo + hi) / 2)])


def curves(rows: Rows) -> dict[str, np.ndarray]:
    """Per-step ICL score and best induction score of one model's rows."""
    steps, icl = rows.where(metric="icl_score", label=None).series("step")
    scores = rows.where(metric="induction_score")
    best = np.array([scores.where(step=int(s)).max() for s in steps])
    return {"step": steps, "icl_score": icl, "induction_score": best}


def head_names(heads) -> str:
    return ", ".join(f"L{int(layer)}H{int(head)}" for layer, head in heads)


def report(cfg: InductionHeadsConfig, run: Run) -> Report:
    model_name = run.meta.get("model")
    return report_pretrained(cfg, run, model_name) if model_name else report_trained(cfg, run)


def report_trained(cfg: InductionHeadsConfig, run: Run) -> Report:
    rows = run.load_rows()
    half = cfg.half(pretrained=False)
    names = [f"L{depth}" for depth in cfg.layers]
    final = {n: run.load_arrays(n) for n in names}
    by_model = {n: curves(rows.where(model=n)) for n in names}
    transitions = {n: transition_step(c["step"], c["induction_score"]) for n, c in by_model.items()}
    last = {n: int(c["step"][-1]) for n, c in by_model.items()}
    ablations = {n: (rows.where(model=n).value("icl_score_intact"), rows.where(model=n).value("icl_score_ablated"),
                     head_names(final[n]["heads"]), rows.where(model=n).value("icl_share_removed")) for n in names}
    loss_curves = {}
    for n in names:
        loss_curves[f"{n} (step {last[n]})"] = final[n]["loss_by_pos"]
        loss_curves[f"{n} ablated"] = final[n]["loss_by_pos_ablated"]

    phase = run.save_figure(figs.phase_change(by_model, transitions), "phase_change")
    heat = run.save_figure(figs.score_heatmaps({n: a["induction_score"] for n, a in final.items()},
                                               "induction_score"), "induction_heatmap")
    others = run.save_figure(figs.score_heatmaps({n: a["previous_token"] for n, a in final.items()},
                                                 "previous_token"), "previous_token_heatmap")
    bars = run.save_figure(figs.ablation_bars({n: a[:3] for n, a in ablations.items()}), "ablation")
    by_pos = run.save_figure(figs.loss_by_position(loss_curves, half), "loss_by_position")

    table = Table(["model", "params", "best induction", "best prev-token", "best copying", "ICL score",
                   "ICL (random tokens)", "transition step", "ablated heads", "ICL ablated", "share removed"],
                  [[n, int(final[n]["n_params"]), float(final[n]["induction_score"].max()),
                    float(final[n]["previous_token"].max()), float(final[n]["copying"].max()),
                    by_model[n]["icl_score"][-1],
                    rows.where(model=n, step=last[n], metric="icl_score").value(label="random-tokens"),
                    transitions[n] if transitions[n] is not None else "none",
                    ablations[n][2], ablations[n][1], ablations[n][3]] for n in names],
                  caption=f"Final step {cfg.train.steps}; prompts of {half} random tokens written twice; "
                          f"ICL score = loss at token {half + half // 2} − loss at token {half // 2}.")
    return Report(
        title="Induction heads and the in-context learning phase change",
        summary=(f"Attention-only {cfg.model.family} models with {', '.join(map(str, cfg.layers))} layer(s), "
                 f"d_model {cfg.model.d_model}, {cfg.model.n_heads} heads, trained {cfg.train.steps} steps on "
                 f"random tokens (vocabulary {cfg.world.vocab}, length {cfg.world.seq_len}) with one segment of "
                 f"{cfg.world.min_segment}–{cfg.world.max_segment} tokens repeated at a random gap. "
                 "Olsson et al. (2022): induction heads form in a narrow window of training that coincides with "
                 "a drop of the ICL score; one-layer models cannot form them."),
        sections=[
            Section("Summary", tables=[table]),
            *filter(None, [training_section(run, rows)]),
            Section("Phase change", "The transition step (dashed) is the first probe step at which the best "
                    "induction score passes halfway between its initial and final values.",
                    figures=[Figure(phase, "ICL score and best induction score against training step.")]),
            Section("Heads", figures=[Figure(heat, "Induction score of every head at the end of training."),
                                      Figure(others, "Previous-token score of every head: the first half of "
                                             "the two-layer induction circuit.")]),
            Section("Ablation", f"Heads with induction score ≥ {cfg.probe.ablate_min_score} "
                    f"({cfg.probe.ablation}-ablated at their z).",
                    figures=[Figure(bars, "ICL score intact and with the induction heads ablated."),
                             Figure(by_pos, "Per-position loss: the second copy becomes predictable once "
                                    "induction heads form, and again unpredictable when they are ablated.")]),
        ])


def report_pretrained(cfg: InductionHeadsConfig, run: Run, model_name: str) -> Report:
    rows = run.load_rows()
    a = run.load_arrays("pretrained")
    half = cfg.half(pretrained=True)
    heads = [tuple(h) for h in a["heads"]]
    heat = run.save_figure(figs.score_heatmaps({model_name: a["induction_score"]}, "induction_score"),
                           "induction_heatmap")
    prev = run.save_figure(figs.score_heatmaps({model_name: a["previous_token"]}, "previous_token"),
                           "previous_token_heatmap")
    bars = run.save_figure(figs.ablation_bars({model_name: (rows.value("icl_score_intact"),
                                                            rows.value("icl_score_ablated"),
                                                            f"{len(heads)} heads")}), "ablation")
    table = Table(["layer", "head", "induction", "prefix matching", "previous token", "copying"],
                  [[l, h, *(float(a[m][l, h]) for m in ("induction_score", "prefix_matching",
                                                        "previous_token", "copying"))]
                   for l, h in top_heads(a["induction_score"], 10)],
                  caption="The ten heads with the highest induction score.")
    return Report(
        title=f"Induction heads of {model_name}",
        summary=f"Every head of {model_name} scored on {cfg.probe.n_prompts} prompts of {half} random tokens "
                f"written twice; ICL score {rows.where(probe='icl').value('icl_score', label=None):.3f} nats "
                f"(loss at token {half + half // 2} − loss at token {half // 2}).",
        sections=[Section("Top heads", tables=[table]),
                  Section("Heads", figures=[Figure(heat, "Induction score per head."),
                                            Figure(prev, "Previous-token score per head.")]),
                  Section("Ablation", f"Ablated heads: {head_names(heads)}.",
                          figures=[Figure(bars, "ICL score intact and with those heads ablated.")])])
