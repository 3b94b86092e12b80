"""The induction-heads report, from the stored run: rows over training and the final arrays."""

from __future__ import annotations

import numpy as np

from iclab.figures import short_name
from iclab.probes.induction import top_heads
from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.induction_heads import figures as figs
from iclab.studies.common import training_section
from iclab.studies.induction_heads.config import InductionHeadsConfig


def transition_step(steps: np.ndarray, best_scores: np.ndarray) -> int:
    """First step at which the best induction score passes halfway between its initial value
    and its final value."""
    lo, hi = best_scores[0], best_scores[-1]
    return int(steps[np.argmax(best_scores >= (lo + hi) / 2)])


def shows_phase_change(c: dict[str, np.ndarray], cfg: InductionHeadsConfig) -> bool:
    """The stated criterion (``probe.phase_threshold``, ``probe.phase_icl_drop``): the best induction
    score ends at or above the threshold having started below it, and the ICL score falls."""
    p = cfg.probe
    return bool(c["induction_score"][0] < p.phase_threshold <= c["induction_score"][-1]
                and c["icl_score"][0] - c["icl_score"][-1] >= p.phase_icl_drop)


def curves(rows: Rows) -> dict[str, np.ndarray]:
    """Per-step ICL score and best induction score of one model's rows."""
    steps, icl = rows.where(metric="icl_score", label=None).series("step")
    scores = rows.where(metric="induction_score")
    best = np.array([scores.where(step=int(s)).max() for s in steps])
    return {"step": steps, "icl_score": icl, "induction_score": best}


def head_names(heads) -> str:
    return ", ".join(f"L{int(layer)}H{int(head)}" for layer, head in heads)


def best_head(scores: np.ndarray) -> str:
    layer, head = top_heads(scores, 1)[0]
    return f"L{layer}H{head}"


def ablation_text(a: dict[str, np.ndarray], rows: Rows, cfg: InductionHeadsConfig) -> str:
    """What the ablation did, in words; says so when no head reached ``probe.ablate_min_score``."""
    heads = head_names(a["heads"])
    intact, ablated = rows.value("icl_score_intact"), rows.value("icl_score_ablated")
    share = rows.value("icl_share_removed")
    which = (f"ablating {heads}" if a["induction_score"].max() >= cfg.probe.ablate_min_score else
             f"no head reached {cfg.probe.ablate_min_score:g}, so the best one, {heads} "
             f"({a['induction_score'].max():.2f}), was ablated: it")
    return (f"{which} moves the ICL score from {_signed(intact)} to {_signed(ablated)} nats "
            f"({share:.0%} of it removed)")


def _signed(x: float) -> str:
    """``+1.23`` / ``-1.23``, and ``+0.00`` rather than ``-0.00``."""
    return f"{round(float(x), 2) + 0.0:+.2f}"


def findings(cfg: InductionHeadsConfig, by_model: dict, final: dict, rows: Rows) -> str:
    """This run's findings from its own numbers, with a warning where they contradict the seed's."""
    out, warnings = [], []
    for depth in cfg.layers:
        n = f"L{depth}"
        c, a = by_model[n], final[n]
        s0, s1 = c["induction_score"][0], c["induction_score"][-1]
        icl = f"the ICL score goes from {_signed(c['icl_score'][0])} to {_signed(c['icl_score'][-1])} nats"
        phase = shows_phase_change(c, cfg)
        if phase:
            text = (f"{n}: induction head {best_head(a['induction_score'])} forms at step ≈"
                    f"{transition_step(c['step'], c['induction_score']):,} (best score {s0:.2f} → {s1:.2f}) "
                    f"and {icl}")
        else:
            text = (f"{n}: no phase change (best induction score {s0:.2f} → {s1:.2f}, threshold "
                    f"{cfg.probe.phase_threshold:g}); {icl}")
        out.append(f"{text}; {ablation_text(a, rows.where(model=n), cfg)}.")
        if depth >= 2 and not phase:
            warnings.append(f"{n} formed no induction head, which the seed's finding expects of a model with two "
                            "or more layers (train longer or check the preset)")
        if depth == 1 and phase:
            warnings.append(f"{n} crossed the phase-change threshold although a 1-layer model cannot form an "
                            "induction head (Olsson et al.): check the threshold")
        if depth >= 2 and phase and rows.where(model=n).value("icl_share_removed") < 0.5:
            warnings.append(f"ablating {n}'s induction heads removed less than half of its ICL score")
    return " ".join(out) + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


def report(cfg: InductionHeadsConfig, run: Run) -> Report:
    model_name = run.meta.get("model")
    return report_pretrained(cfg, run, model_name) if model_name else report_trained(cfg, run)


def report_trained(cfg: InductionHeadsConfig, run: Run) -> Report:
    rows = run.load_rows()
    half = cfg.half(pretrained=False)
    names = [f"L{depth}" for depth in cfg.layers]
    final = {n: run.load_arrays(n) for n in names}
    by_model = {n: curves(rows.where(model=n)) for n in names}
    transitions = {n: transition_step(c["step"], c["induction_score"]) if shows_phase_change(c, cfg) else None
                   for n, c in by_model.items()}
    last = {n: int(c["step"][-1]) for n, c in by_model.items()}
    ablations = {n: (rows.where(model=n).value("icl_score_intact"), rows.where(model=n).value("icl_score_ablated"),
                     head_names(final[n]["heads"]), rows.where(model=n).value("icl_share_removed")) for n in names}
    loss_curves = {n: {f"step {last[n]}": final[n]["loss_by_pos"], "ablated": final[n]["loss_by_pos_ablated"]}
                   for n in names}

    phase = run.save_figure(figs.phase_change(by_model, transitions, cfg.probe.phase_threshold), "phase_change")
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
        summary=(f"{findings(cfg, by_model, final, rows)}\n\n"
                 f"Attention-only {cfg.model.family} models with {', '.join(map(str, cfg.layers))} layer(s), "
                 f"d_model {cfg.model.d_model}, {cfg.model.n_heads} heads, trained {cfg.train.steps} steps on "
                 f"random tokens (vocabulary {cfg.world.vocab}, length {cfg.world.seq_len}) with one segment of "
                 f"{cfg.world.min_segment}–{cfg.world.max_segment} tokens repeated at a random gap. "
                 "Olsson et al. (2022): induction heads form in a narrow window of training that coincides with "
                 "a drop of the ICL score; one-layer models cannot form them."),
        sections=[
            Section("Summary", tables=[table]),
            *filter(None, [training_section(run, rows)]),
            Section("Phase change", f"A model shows the phase change when its best induction score ends at or above "
                    f"{cfg.probe.phase_threshold:g} (dotted) having started below it, and its ICL score falls by at "
                    f"least {cfg.probe.phase_icl_drop:g} nats. Its transition step (dashed) is the first probe step "
                    "at which the best induction score passes halfway between its initial and final values.",
                    figures=[Figure(phase, "ICL score and best induction score against training step.")]),
            Section("Heads", figures=[Figure(heat, "Induction score of every head at the end of training."),
                                      Figure(others, "Previous-token score of every head: the first half of "
                                             "the two-layer induction circuit.")]),
            Section("Ablation", f"Heads with induction score ≥ {cfg.probe.ablate_min_score} are "
                    f"{cfg.probe.ablation}-ablated at their z (the best head when none reaches it). "
                    + " ".join(f"{n}: {ablation_text(final[n], rows.where(model=n), cfg)}." for n in names),
                    figures=[Figure(bars, "ICL score intact and with the induction heads ablated."),
                             Figure(by_pos, "Per-position loss: the second copy becomes predictable once "
                                    "induction heads form, and again unpredictable when they are ablated.")]),
        ])


def report_pretrained(cfg: InductionHeadsConfig, run: Run, model_name: str) -> Report:
    rows = run.load_rows()
    a = run.load_arrays("pretrained")
    half, trained = int(a["half"]), int(a["trained_context"])
    heads = [tuple(h) for h in a["heads"]]
    name = short_name(model_name)
    heat = run.save_figure(figs.score_heatmaps({name: a["induction_score"]}, "induction_score"),
                           "induction_heatmap")
    prev = run.save_figure(figs.score_heatmaps({name: a["previous_token"]}, "previous_token"),
                           "previous_token_heatmap")
    bars = run.save_figure(figs.ablation_bars({name: (rows.value("icl_score_intact"),
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
                f"written twice ({2 * half} tokens"
                + (f"; the model was trained on sequences of {trained}" if trained else "") + "). The best induction head is {best_head(a['induction_score'])} (score "
                f"{a['induction_score'].max():.2f}); {int((a['induction_score'] >= cfg.probe.ablate_min_score).sum())} "
                f"heads score at least {cfg.probe.ablate_min_score:g}. ICL score "
                f"{rows.where(probe='icl').value('icl_score', label=None):+.2f} nats (loss at token "
                f"{half + half // 2} − loss at token {half // 2}); {ablation_text(a, rows, cfg)}.",
        sections=[Section("Top heads", tables=[table]),
                  Section("Heads", figures=[Figure(heat, "Induction score per head."),
                                            Figure(prev, "Previous-token score per head.")]),
                  Section("Ablation", f"Ablated heads: {head_names(heads)}; {ablation_text(a, rows, cfg)}.",
                          figures=[Figure(bars, "ICL score intact and with those heads ablated.")])])
