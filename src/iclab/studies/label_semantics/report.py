"""The label-semantics report, from the stored run's rows and arrays alone."""

from __future__ import annotations

import numpy as np

from iclab.figures import short_name
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.label_semantics import figures as figs
from iclab.studies.label_semantics.conditions import ZERO_SHOT, group_label, split_group
from iclab.studies.label_semantics.config import LabelSemanticsConfig

#: Min et al.: random labels cost at most this much accuracy against gold labels
RANDOM_MARGIN = 0.10
#: the trained model has learned the labels' meaning when its zero-shot accuracy is at least this
PRIOR_LEARNED = 0.9
NAMES = {"zero-shot": "zero-shot", "gold": "gold", "random": "random", "flipped": "flipped",
         "unrelated": "unrelated (SUL)", "no-labels": "no labels", "ood-inputs": "OOD inputs"}


def params(n: float) -> str:
    """A parameter count for people: 0.12M, 135M, 1.7B."""
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


class Results:
    """Final accuracies of a run, by (model, set, condition, k)."""

    def __init__(self, run: Run):
        rows = run.load_rows().where(probe="label_scoring")
        steps = [s for s in rows.unique("step") if s is not None]
        self.steps = sorted(steps)
        self.all = rows
        self.rows = rows.where(step=max(steps)) if steps else rows
        m = run.load_arrays("models")
        self.models = [str(n) for n in m["names"]]
        self.sizes = m["n_params"].astype(float)
        s = run.load_arrays("sets")
        self.sets = [str(n) for n in s["names"]]
        self.chance = {n: 1 / int(c) for n, c in zip(self.sets, s["n_classes"])}
        groups = [split_group(g) for g in self.rows.unique("label")]
        self.conditions = [c for c in (ZERO_SHOT, "gold", "random", "flipped", "unrelated", "no-labels",
                                       "ood-inputs") if any(g[1] == c for g in groups)]
        self.shots = sorted(k for k in self.rows.unique("pos") if k)

    def k_of(self, cond: str, k: int) -> int:
        return 0 if cond == ZERO_SHOT else k

    def acc(self, model: str, task: str, cond: str, k: int, metric: str = "accuracy") -> float:
        return self.rows.where(metric=metric, model=model, label=group_label(task, cond),
                               pos=self.k_of(cond, k)).first()

    def se(self, model: str, task: str, cond: str, k: int) -> float:
        """Binomial standard error of the accuracy, sqrt(p (1 - p) / n)."""
        p = self.acc(model, task, cond, k)
        n = self.acc(model, task, cond, k, "n_prompts")
        return float(np.sqrt(p * (1 - p) / n)) if n > 0 else float("nan")

    def mean(self, model: str, cond: str, k: int, metric: str = "accuracy") -> float:
        """Mean over the sets (each set counts once)."""
        return float(np.nanmean([self.acc(model, t, cond, k, metric) for t in self.sets]))

    def mean_chance(self) -> float:
        return float(np.mean([self.chance[t] for t in self.sets]))


def report(cfg: LabelSemanticsConfig, run: Run) -> Report:
    res = Results(run)
    K = res.shots[-1]
    trained = bool(res.steps)
    sections = []

    panels = {}
    for t in res.sets:
        panels[t] = {m: (np.array([res.acc(m, t, c, K) for c in res.conditions]),
                         np.array([res.se(m, t, c, K) for c in res.conditions])) for m in res.models}
    bars = run.save_figure(figs.accuracy_by_condition(panels, res.conditions, res.chance, K,
                                                      [NAMES[c] for c in res.conditions]),
                           "accuracy_by_condition")
    sections.append(Section(
        "Accuracy by condition",
        f"Accuracy at k = {K} demonstrations (zero-shot: none), scored by the argmax over the label tokens' logits "
        "at the answer position. Error bars: binomial standard error over the prompts. Dotted: chance.",
        figures=[Figure(bars, "Accuracy of each demonstration variant against zero-shot, one panel per set.")],
        tables=[accuracy_table(res)]))

    lines, context = {}, {}
    for m in res.models:
        lines[m] = {c: (np.array(res.shots), np.array([res.mean(m, c, k) for k in res.shots]))
                    for c in res.conditions if c != ZERO_SHOT}
        lines[m][ZERO_SHOT] = (np.array([0]), np.array([res.mean(m, ZERO_SHOT, 0)]))
        if "flipped" in res.conditions:
            context[m] = (np.array(res.shots), np.array([res.mean(m, "flipped", k, "context_accuracy")
                                                         for k in res.shots]))
    vs_k = run.save_figure(figs.accuracy_vs_k(lines, res.mean_chance(), context), "accuracy_vs_k")
    sections.append(Section("Accuracy against the number of demonstrations",
                            "Mean over the sets. Dashed: the flipped prompts scored against the flipped labels "
                            "(how often the model follows the labels in context rather than its prior).",
                            figures=[Figure(vs_k, "Accuracy against k, one panel per model.")]))

    if len(res.models) > 1:
        by = {c: np.array([res.mean(m, c, K) for m in res.models]) for c in res.conditions}
        sc = run.save_figure(figs.scale_curve(res.sizes, by, res.models, res.mean_chance(), K), "scale_curve")
        sections.append(Section("Scale", scale_text(res, K),
                                figures=[Figure(sc, "Accuracy (mean over the sets) against parameters.")]))

    if trained:
        sections.append(over_training_section(run, res, K))
        rows = run.load_rows()
        tr = training_section(run, rows)
        if tr is not None:
            sections.append(tr)

    summary = trained_summary(cfg, run, res, K) if trained else pretrained_summary(cfg, res, K)
    title = "label-semantics: " + ("a model trained on the label-map world" if trained
                                   else ", ".join(short_name(m) for m in res.models))
    return Report(title, summary, sections)


def accuracy_table(res: Results) -> Table:
    out = []
    for m in res.models:
        for t in res.sets:
            for c in res.conditions:
                ks = [0] if c == ZERO_SHOT else res.shots
                cells = [res.acc(m, t, c, k) if k in ks else float("nan") for k in res.shots]
                if c == ZERO_SHOT:
                    cells = [res.acc(m, t, c, 0)] * len(res.shots)
                out.append([short_name(m), t, NAMES[c], *cells])
                if c == "flipped":
                    out.append([short_name(m), t, "flipped, vs flipped labels",
                                *[res.acc(m, t, c, k, "context_accuracy") for k in res.shots]])
    return Table(["model", "set", "condition", *[f"k = {k}" for k in res.shots]], out,
                 caption="Accuracy (zero-shot repeated in every column).")


def over_training_section(run: Run, res: Results, K: int) -> Section:
    m = res.models[0]
    curves = {}
    for c in res.conditions:
        if c == ZERO_SHOT:
            continue
        curves[c] = res.all.where(metric="accuracy", model=m, label=group_label(res.sets[0], c), pos=K).series("step")
        if c == "flipped":
            curves["flipped, vs flipped labels"] = res.all.where(
                metric="context_accuracy", model=m, label=group_label(res.sets[0], c), pos=K).series("step")
    curves[ZERO_SHOT] = res.all.where(metric="accuracy", model=m, label=group_label(res.sets[0], ZERO_SHOT),
                                      pos=0).series("step")
    fig = run.save_figure(figs.over_training(curves, res.mean_chance(), K), "over_training")
    return Section("Over training", f"Accuracy of each condition at k = {K} (zero-shot: k = 0) at every probe step.",
                   figures=[Figure(fig, "Accuracy against the training step.")])


def _fmt(res: Results, m: str, K: int) -> str:
    parts = [f"{NAMES[c]} {res.mean(m, c, K):.2f}" for c in res.conditions]
    if "flipped" in res.conditions:
        parts.append(f"flipped scored against the flipped labels {res.mean(m, 'flipped', K, 'context_accuracy'):.2f}")
    return ", ".join(parts)


def pretrained_summary(cfg: LabelSemanticsConfig, res: Results, K: int) -> str:
    chance = res.mean_chance()
    lines = [f"Sets: {', '.join(res.sets)} (chance {chance:.2f} on average); {cfg.probe.n_draws} demonstration "
             f"draws per query, k = {', '.join(map(str, res.shots))}."]
    warnings = []
    for m, size in zip(res.models, res.sizes):
        lines.append(f"{short_name(m)} ({params(size)} parameters), mean accuracy at k = {K}: {_fmt(res, m, K)}.")
        has = set(res.conditions)
        if {"gold", "random"} <= has:
            gap = res.mean(m, "gold", K) - res.mean(m, "random", K)
            lines.append(f"Random labels cost {gap:+.2f} against gold labels (Min et al. 2022: little).")
            if gap > RANDOM_MARGIN:
                warnings.append(f"on {short_name(m)} random labels cost {gap:.2f} against gold, more than "
                                f"{RANDOM_MARGIN:.2f} (Min et al.: the correct input-label mapping matters little)")
        for c in ("no-labels", "ood-inputs"):
            if {c, "random"} <= has and res.mean(m, c, K) >= res.mean(m, "random", K):
                warnings.append(f"on {short_name(m)} {NAMES[c]} ({res.mean(m, c, K):.2f}) are not below random "
                                f"labels ({res.mean(m, 'random', K):.2f}) (Min et al.: the label space and the input "
                                "distribution of the demonstrations matter)")
        if "flipped" in has:
            f = res.mean(m, "flipped", K)
            verdict = ("follows the flipped labels and overrides its semantic prior (below chance), as Wei et al. "
                       "(2023) saw in large models" if f < chance else
                       "keeps its semantic prior against the flipped labels (above chance), as Wei et al. saw in "
                       "small models")
            lines.append(f"With flipped labels it {verdict}.")
        if "unrelated" in has and "gold" in has:
            lines.append(f"Unrelated labels (SUL) cost {res.mean(m, 'gold', K) - res.mean(m, 'unrelated', K):+.2f} "
                         "against gold labels (Wei et al.: much for small models, little for large ones).")
    if len(res.models) > 1:
        order = [res.models[i] for i in np.argsort(res.sizes)]
        small, large = order[0], order[-1]
        if "flipped" in res.conditions and res.mean(large, "flipped", K) >= res.mean(small, "flipped", K):
            warnings.append(f"flipped-label accuracy does not fall from the smallest model ({short_name(small)}, "
                            f"{res.mean(small, 'flipped', K):.2f}) to the largest ({short_name(large)}, "
                            f"{res.mean(large, 'flipped', K):.2f}) (Wei et al.: larger models override priors)")
        if {"unrelated", "gold"} <= set(res.conditions):
            gap = {m: res.mean(m, "gold", K) - res.mean(m, "unrelated", K) for m in (small, large)}
            if gap[large] >= gap[small]:
                warnings.append(f"the cost of unrelated labels does not shrink with size ({gap[small]:.2f} on "
                                f"{short_name(small)}, {gap[large]:.2f} on {short_name(large)}) (Wei et al.: larger "
                                "models learn SUL mappings)")
    return " ".join(lines) + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


def scale_text(res: Results, K: int) -> str:
    order = [res.models[i] for i in np.argsort(res.sizes)]
    per = "; ".join(f"{short_name(m)}: " + ", ".join(f"{NAMES[c]} {res.mean(m, c, K):.2f}" for c in res.conditions)
                    for m in order)
    return (f"Mean accuracy at k = {K}, smallest model first: {per}. Wei et al. (2023): as models grow, flipped "
            "labels lower accuracy further (below chance) and unrelated labels cost less.")


def trained_summary(cfg: LabelSemanticsConfig, run: Run, res: Results, K: int) -> str:
    w, m = cfg.world, res.models[0]
    t = res.sets[0]
    steps = int(run.load_arrays("models")["final_step"])
    chance = res.chance[t]
    lines = [f"A {cfg.model.family} model ({cfg.model.n_layers} layers, width {cfg.model.d_model}, "
             f"{params(res.sizes[0])} parameters) trained {steps} steps on the label-map world: {w.n_inputs} inputs "
             f"in {w.n_classes} classes; {w.pairs} pairs a sequence; labels remapped in context in "
             f"{w.p_remap:.0%} of sequences and unrelated in {w.p_unrelated:.0%}, each label random with probability "
             f"{w.label_noise:.0%}.",
             f"Accuracy at k = {K}: {_fmt(res, m, K)}."]
    warnings = []
    zero = res.acc(m, t, ZERO_SHOT, 0)
    if zero < PRIOR_LEARNED:
        warnings.append(f"zero-shot accuracy is {zero:.2f}, below {PRIOR_LEARNED}: pretraining did not give the "
                        "labels their meaning")
    if "flipped" in res.conditions:
        follow = [res.acc(m, t, "flipped", k, "context_accuracy") for k in res.shots]
        lines.append("Flipped labels are followed in " + ", ".join(f"{f:.2f}" for f in follow) + " of prompts at k = "
                     + ", ".join(map(str, res.shots)) + ".")
        bayes = [w.bayes_follows_flipped(k) for k in res.shots]
        if bayes[0] is not None:
            first = next((k for k, b in zip(res.shots, bayes) if b), None)
            lines.append("The Bayes-optimal predictor of this world " + (
                f"follows them from k = {first}." if first is not None else "never follows them at these k."))
        if w.p_remap > 0:
            lines.append("Pretraining rewarded reading the map from the context, so with enough flipped "
                         "demonstrations the model should follow them (accuracy against the gold labels below chance), "
                         "as Wei et al.'s large models do.")
            if res.acc(m, t, "flipped", K) >= chance:
                warnings.append(f"at k = {K} flipped-label accuracy is {res.acc(m, t, 'flipped', K):.2f}, not below "
                                f"chance ({chance:.2f})")
        else:
            lines.append("Pretraining never remapped the labels, so the model should keep its prior.")
            if res.acc(m, t, "flipped", K) < chance:
                warnings.append("the model follows flipped labels that pretraining never showed")
    if "unrelated" in res.conditions and w.p_unrelated > 0:
        u = res.acc(m, t, "unrelated", K)
        lines.append(f"Unrelated labels: {u:.2f} at k = {K} (chance {chance:.2f}).")
        if u <= chance:
            warnings.append(f"unrelated labels are not learned in context ({u:.2f} at k = {K})")
    return " ".join(lines) + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)
