"""The icg-generalization report, from the stored run's ICTR rows."""

from __future__ import annotations

import numpy as np

from iclab.rows import Row, Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.icg_generalization import figures as figs
from iclab.studies.icg_generalization.config import ICGGeneralizationConfig
from iclab.worlds.icg import TOPIC_SETS


def stage(r: Row) -> str:
    """'untrained' for step 0, 'trained' for a later step (callers keep step 0 and the last one),
    the model's label for rows of a loaded model (no step)."""
    return r.model if r.step is None else ("untrained" if r.step == 0 else "trained")


def at_stage(rows: Rows, name: str) -> Rows:
    return Rows(r for r in rows if stage(r) == name)


def ictr_table(rows: Rows, k: int, trained: str, untrained: str | None) -> Table:
    """ICTR at k shots per topic set: trained (with CI), untrained, Bayes reference, malformed."""
    def v(metric, s, model):
        return at_stage(rows, model).where(metric=metric, label=s, pos=k).first()
    out = []
    for s in TOPIC_SETS:
        if not rows.where(label=s):
            continue
        row = [s, v("ictr", s, trained), f"[{v('ictr_lo', s, trained):.2f}, {v('ictr_hi', s, trained):.2f}]"]
        if untrained:
            row.append(v("ictr", s, untrained))
        row += [v("bayes_ictr", s, trained), v("ictr", s, trained) - v("bayes_ictr", s, trained),
                v("malformed", s, trained)]
        out.append(row)
    cols = ["topic set", f"ICTR (k={k})", "95% CI"] + (["untrained"] if untrained else []) + \
           ["Bayes-optimal", "model − Bayes", "malformed"]
    return Table(cols, out, caption="ICTR = share of sampled paragraphs attributed to the prompt's topic "
                 "(argmax of the exact likelihood over all topics); malformed generations count as misses.")


def first_and_last(rows: Rows) -> Rows:
    """The ICTR rows of step 0 and of the last step (all of them for a loaded model)."""
    ictr = rows.where(probe="ictr")
    steps = [s for s in ictr.unique("step") if s is not None]
    return ictr.where(step=(0, max(steps))) if steps else ictr


def curves_by_k(rows: Rows) -> dict[str, dict[str, np.ndarray]]:
    """{stage: {set: array (k, 4) of k, ictr, lo, hi}} plus "Bayes-optimal" from the bayes rows."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in dict.fromkeys(stage(r) for r in rows):
        sel = at_stage(rows, name)
        out[name] = {}
        for s in sel.unique("label"):
            of_set = sel.where(label=s)
            ks = sorted(set(of_set.where(metric="ictr").unique("pos")))
            val = {(r.metric, r.pos): r.value for r in of_set}
            out[name][s] = np.array([[k, val["ictr", k], val["ictr_lo", k], val["ictr_hi", k]] for k in ks])
    bayes = at_stage(rows, next(iter(out))).where(metric="bayes_ictr")
    out["Bayes-optimal"] = {s: np.array(sorted((r.pos, r.value, r.value, r.value) for r in bayes.where(label=s)))
                            for s in bayes.unique("label")}
    return out


def curves_over_training(rows: Rows, k: int):
    """ICTR at ``k`` shots per topic set against the step, the Bayes-optimal value of each set, and the
    training loss against the step (the arguments of :func:`figures.ictr_over_training`)."""
    at_k = Rows(r for r in rows if r.step is not None).where(probe="ictr", metric="ictr", pos=k)
    ictr = {s: at_k.where(label=s).series("step") for s in TOPIC_SETS if at_k.where(label=s)}
    bayes = {s: rows.where(metric="bayes_ictr", label=s, pos=k).first() for s in TOPIC_SETS
             if rows.where(metric="bayes_ictr", label=s, pos=k)}
    return ictr, bayes, rows.where(probe="train", metric="loss").series("step")


def report(cfg: ICGGeneralizationConfig, run: Run) -> Report:
    model_name = run.meta.get("model")
    return report_pretrained(cfg, run, model_name) if model_name else report_trained(cfg, run)


def report_trained(cfg: ICGGeneralizationConfig, run: Run) -> Report:
    world = cfg.world
    rows = run.load_rows()
    k = cfg.probe.report_shot
    final = first_and_last(rows)
    by_k = run.save_figure(figs.ictr_vs_k(curves_by_k(final)), "ictr_vs_k")
    over_training = run.save_figure(figs.ictr_over_training(*curves_over_training(rows, k), k), "ictr_over_training")
    seq = 1 + world.n_paragraphs * (world.paragraph_len + 1)
    tokens = cfg.train.steps * cfg.train.batch_size * seq
    size = int(run.load_arrays("model")["n_params"])
    return Report(
        title=f"In-context generation on the ICG world (M = {world.arity}, r_R = {world.r_repeat})",
        summary=summary(cfg, size, tokens, final, k),
        sections=[
            Section("ICTR by topic set", tables=[ictr_table(final, k, "trained", "untrained")]),
            Section("ICTR against the number of shots",
                    "Trained model (solid, 95% Wilson band), untrained model (step 0, dotted) and the "
                    "Bayes-optimal predictor of the training distribution (dashed) on the same prompts.",
                    figures=[Figure(by_k, "ICTR_X(k) for X = R, C, U.")]),
            Section("Over training", figures=[Figure(over_training, f"ICTR at k = {k} and training loss "
                                                     "against the training step.")]),
            *filter(None, [training_section(run, rows)]),
            Section("World and definitions", world_text(cfg)),
        ])


def report_pretrained(cfg: ICGGeneralizationConfig, run: Run, model_name: str) -> Report:
    rows = run.load_rows()
    k = cfg.probe.report_shot
    by_k = run.save_figure(figs.ictr_vs_k(curves_by_k(rows)), "ictr_vs_k")
    return Report(
        title=f"In-context generation of {model_name} (M = {cfg.world.arity}, r_R = {cfg.world.r_repeat})",
        summary=f"ICTR of {model_name} on {cfg.probe.n_prompts} prompts per topic set. The world must be the "
                "one the model was trained on (same world parameters and seed) for R, C and U to mean "
                "what they say.",
        sections=[Section("ICTR by topic set", tables=[ictr_table(rows, k, model_name, None)]),
                  Section("ICTR against the number of shots", figures=[Figure(by_k, "ICTR_X(k).")]),
                  Section("World and definitions", world_text(cfg))])


def summary(cfg: ICGGeneralizationConfig, size: int, tokens: int, rows: Rows, k: int) -> str:
    w = cfg.world

    def v(metric, s, name="trained"):
        return at_stage(rows, name).where(metric=metric, label=s, pos=k).first()
    sets = [s for s in TOPIC_SETS if rows.where(label=s)]
    found = "; ".join(f"ICTR_{s} = {v('ictr', s):.2f} (untrained {v('ictr', s, 'untrained'):.2f}, "
                      f"Bayes-optimal {v('bayes_ictr', s):.2f})" for s in sets)
    return (f"{findings(cfg, v, sets, k)}\n\n"
            f"A {cfg.model.spec().family} model '{cfg.model.label}' ({size:,} parameters) trained "
            f"{cfg.train.steps} steps ({tokens / 1e6:.1f}M tokens) on documents of {w.n_paragraphs} paragraphs of "
            f"{w.paragraph_len} tokens, topics of arity M = {w.arity} ({w.n_topics} topics; "
            f"|R| = {w.topic_set('R').size}, |C| = {w.topic_set('C').size}, |U| = {w.topic_set('U').size}), "
            f"r_R = {w.r_repeat}, γ = {w.gamma}, p_rep = {w.p_rep}. At k = {k} shots: {found}. "
            "Jiang et al. (2024): trained models repeat R topics; with enough compositionality (M = 3, 4) also "
            "C and U topics, which the Bayes-optimal predictor of the training distribution does not repeat; at "
            "M = 2 they repeat R but not U.")


def findings(cfg: ICGGeneralizationConfig, v, sets: list[str], k: int) -> str:
    """This run's findings at k shots from its numbers (``v(metric, set)``), flagging what contradicts
    Jiang et al.'s: R topics repeated, and U topics repeated beyond the Bayes-optimal predictor only
    with compositional topics (M ≥ 3)."""
    M, out, warnings = cfg.world.arity, [], []
    r = v("ictr", "R")
    out.append(f"The trained model {'repeats' if r >= 0.5 else 'does not repeat'} the topic of R prompts "
               f"(ICTR_R {r:.2f} at k = {k}, untrained {v('ictr', 'R', 'untrained'):.2f})")
    if r < 0.5:
        warnings.append("trained models should repeat R topics (ICTR_R < 0.5 here)")
    for s in (x for x in ("C", "U") if x in sets):
        gap = v("ictr", s) - v("bayes_ictr", s)
        verb = "generalises to" if v("ictr", s) >= 0.5 and gap >= 0.2 else "does not repeat"
        out.append(f"it {verb} {'unseen' if s == 'U' else 'non-repeated'} ({s}) topics: ICTR_{s} {v('ictr', s):.2f} "
                   f"against {v('bayes_ictr', s):.2f} for the Bayes-optimal predictor")
    if "U" in sets:
        u = v("ictr", "U")
        if M == 2 and u >= 0.5:
            warnings.append("at M = 2 the paper finds no repetition of unseen topics (ICTR_U ≥ 0.5 here)")
        if M >= 3 and u < 0.5:
            warnings.append(f"at M = {M} the paper finds unseen topics repeated once enough topics are repeated in "
                            f"training; this run (r_R = {cfg.world.r_repeat}) does not (ICTR_U < 0.5)")
    text = "; ".join(out) + "."
    return text + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


def world_text(cfg: ICGGeneralizationConfig) -> str:
    return ("A k-shot prompt is <bos> x_1 <sep> ... x_k <sep> with x_i ~ p(x | t) for a topic t drawn uniformly "
            "from the set; the model samples L tokens at temperature 1. The generation is attributed to "
            "argmax_t' log p(x | t') over all topics R ∪ C ∪ U; a generation holding a special token is "
            "malformed and counts as a miss. Prompts are nested over k (the k-shot prompt is the first k "
            "paragraphs of the k_max-shot one). The Bayes-optimal reference is the mean over the same prompts of "
            "p(β_{k+1} = t | x_1..x_k) under the training distribution.\n\n"
            "World: " + ", ".join(f"{k} = {v}" for k, v in cfg.world.model_dump().items()) + ".")

