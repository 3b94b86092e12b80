"""The demo-selection report, from the stored run's rows and arrays alone."""

from __future__ import annotations

import numpy as np

from iclab.figures import short_name
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.demo_selection import figures as figs
from iclab.studies.demo_selection.config import METHODS, DemoSelectionConfig
from iclab.studies.demo_selection.select import RANKED, REVERSED, ZERO_SHOT, group_label, split_group

NAMES = figs.METHOD_NAMES


class Results:
    """Accuracies of a run by (model, set, method, order, k)."""

    def __init__(self, run: Run):
        rows = run.load_rows()
        self.rows = rows.where(probe="label_scoring")
        self.match = rows.where(probe="demo_selection", metric="label_match")
        self.models = [str(n) for n in run.load_arrays("models")["names"]]
        s = run.load_arrays("sets")
        self.sets = [str(n) for n in s["names"]]
        self.chance = {n: 1 / int(c) for n, c in zip(self.sets, s["n_classes"])}
        groups = [split_group(g) for g in self.rows.unique("label")]
        self.methods = [m for m in METHODS if any(g[1] == m for g in groups)]
        self.perms = sorted({int(g[2][4:]) for g in groups if g[2].startswith("perm")})
        self.order_k = next((int(r.pos) for r in self.rows if "/perm" in (r.label or "")), None)
        self.shots = sorted({int(r.pos) for r in self.rows if r.label and r.label.endswith(f"/{RANKED}")
                             and ZERO_SHOT not in r.label and r.pos})

    def acc(self, model: str, task: str, method: str, k: int, order: str = RANKED, metric: str = "accuracy") -> float:
        k = 0 if method == ZERO_SHOT else k
        return self.rows.where(metric=metric, model=model, label=group_label(task, method, order), pos=k).first()

    def se(self, model: str, task: str, method: str, k: int, order: str = RANKED) -> float:
        p, n = self.acc(model, task, method, k, order), self.acc(model, task, method, k, order, "n_prompts")
        return float(np.sqrt(p * (1 - p) / n)) if n > 0 else float("nan")

    def mean(self, model: str, method: str, k: int, order: str = RANKED) -> float:
        return float(np.nanmean([self.acc(model, t, method, k, order) for t in self.sets]))

    def perms_of(self, model: str, task: str, method: str) -> np.ndarray:
        return np.array([self.acc(model, task, method, self.order_k, f"perm{p}") for p in self.perms])

    def label_match(self, model: str, task: str, method: str, k: int) -> float:
        return self.match.where(model=model, label=f"{task}/{method}", pos=k).first()


def report(cfg: DemoSelectionConfig, run: Run) -> Report:
    res = Results(run)
    K = res.shots[-1]
    sections = []

    grid = {m: {t: {meth: (np.array(res.shots), np.array([res.acc(m, t, meth, k) for k in res.shots]))
                    for meth in res.methods} for t in res.sets} for m in res.models}
    zero = {m: {t: res.acc(m, t, ZERO_SHOT, 0) for t in res.sets} for m in res.models}
    f1 = run.save_figure(figs.accuracy_vs_k(grid, zero, res.chance), "accuracy_by_method")
    sections.append(Section(
        "Accuracy by selection method and k",
        "Each query's demonstrations come from the rest of its set: at random, the k nearest by cosine similarity "
        f"of {encoder_text(cfg)} (kNN), or the k of highest BM25 score of the query's words; the most similar "
        "example sits next to the query. Scored by the argmax over the label tokens' logits.",
        figures=[Figure(f1, "Accuracy against k, one line per method; square: zero-shot; dotted: chance.")],
        tables=[method_table(res)]))

    if res.match:
        lines = {meth: (np.array(res.shots), np.array([np.mean([res.label_match(res.models[0], t, meth, k)
                                                                for t in res.sets]) for k in res.shots]))
                 for meth in res.methods}
        f2 = run.save_figure(figs.label_match(lines, float(np.mean(list(res.chance.values())))), "label_match")
        sections.append(Section(
            "Do the chosen demonstrations share the query's label?",
            "The share of chosen demonstrations whose label is the query's, mean over the sets; it does not "
            "depend on the model unless kNN uses the model's own states.",
            figures=[Figure(f2, "Label match against k.")]))

    if res.perms:
        panels = {}
        for m in res.models:
            for t in res.sets:
                label = t if len(res.models) == 1 else f"{t} — {short_name(m)}"
                panels[label] = {meth: {"perms": res.perms_of(m, t, meth),
                                        "ranked": res.acc(m, t, meth, res.order_k),
                                        "reversed": res.acc(m, t, meth, res.order_k, REVERSED)}
                                 for meth in res.methods}
        f3 = run.save_figure(figs.order_sensitivity(panels, res.order_k), "order_sensitivity")
        sections.append(Section(
            "Order sensitivity",
            f"The same k = {res.order_k} demonstrations of each query in {len(res.perms)} random orders (permutation "
            "p is the same for every query). Lu et al. (2022): accuracy can swing from near chance to near its best "
            "with the order alone.",
            figures=[Figure(f3, "Dots: accuracy in each random order (line: their mean); star: most similar last; "
                                "triangle: most similar first.")],
            tables=[order_table(res)]))

    return Report("demo-selection: " + ", ".join(short_name(m) for m in res.models), summary(cfg, res, K), sections)


def encoder_text(cfg: DemoSelectionConfig) -> str:
    sel = cfg.selection
    if sel.encoder == "lm":
        return "the scored model's own mean last-layer state"
    return f"the sentence encoder at {sel.encoder_path}" if sel.encoder_path else \
        "all-MiniLM-L6-v2 sentence embeddings"


def method_table(res: Results) -> Table:
    out = []
    for m in res.models:
        for t in res.sets:
            out.append([short_name(m), t, "zero-shot", *[res.acc(m, t, ZERO_SHOT, 0)] * len(res.shots)])
            for meth in res.methods:
                out.append([short_name(m), t, NAMES[meth], *[res.acc(m, t, meth, k) for k in res.shots]])
    return Table(["model", "set", "method", *[f"k = {k}" for k in res.shots]], out,
                 caption="Accuracy (zero-shot repeated in every column).")


def spread(perms: np.ndarray) -> float:
    return float(perms.max() - perms.min()) if len(perms) else float("nan")


def order_table(res: Results) -> Table:
    out = []
    for m in res.models:
        for t in res.sets:
            for meth in res.methods:
                p = res.perms_of(m, t, meth)
                out.append([short_name(m), t, NAMES[meth], res.acc(m, t, meth, res.order_k),
                            res.acc(m, t, meth, res.order_k, REVERSED), float(p.mean()), float(p.std()),
                            float(p.min()), float(p.max()), spread(p)])
    return Table(["model", "set", "method", "most similar last", "most similar first", "mean over orders",
                  "sd over orders", "min", "max", "max − min"], out,
                 caption="Accuracy over random orders of the same demonstrations ('most similar first' is – for "
                         "random selection).")


def summary(cfg: DemoSelectionConfig, res: Results, K: int) -> str:
    lines = [f"Sets: {', '.join(res.sets)}; {cfg.selection.n_queries} queries per set (at most), k = "
             f"{', '.join(map(str, res.shots))}; kNN on {encoder_text(cfg)}."]
    warnings = []
    for m in res.models:
        accs = {meth: res.mean(m, meth, K) for meth in res.methods}
        lines.append(f"{short_name(m)}, mean accuracy at k = {K}: zero-shot {res.mean(m, ZERO_SHOT, 0):.2f}, "
                     + ", ".join(f"{NAMES[meth]} {a:.2f}" for meth, a in accs.items()) + ".")
        if "knn" in accs and "random" in accs:
            lines.append(f"kNN selection against random: {accs['knn'] - accs['random']:+.2f} (Liu et al. 2022: "
                         "similar demonstrations help).")
            if accs["knn"] <= accs["random"]:
                warnings.append(f"on {short_name(m)} kNN-selected demonstrations ({accs['knn']:.2f}) are not better "
                                f"than random ones ({accs['random']:.2f}) at k = {K}")
        if "bm25" in accs and "random" in accs:
            lines.append(f"BM25 selection against random: {accs['bm25'] - accs['random']:+.2f}.")
        if res.perms:
            ko = res.order_k
            parts, flat = [], []
            for meth in res.methods:
                sp = [spread(res.perms_of(m, t, meth)) for t in res.sets]
                noise = [2 * np.sqrt(0.25 / max(res.acc(m, t, meth, ko, "perm0", "n_prompts"), 1)) for t in res.sets]
                parts.append(f"{NAMES[meth]} {np.mean(sp):.2f}")
                flat.append(np.mean(sp) <= np.mean(noise))
            lines.append(f"Accuracy over {len(res.perms)} random orders at k = {ko} spans (max − min, mean over the "
                         "sets): " + ", ".join(parts) + " (Lu et al. 2022: order alone moves accuracy a lot).")
            sim = [meth for meth in res.methods if meth != "random"]
            if sim:
                gain = {meth: res.mean(m, meth, ko) - np.mean([res.perms_of(m, t, meth).mean() for t in res.sets])
                        for meth in sim}
                lines.append("Most similar last against the mean over random orders: "
                             + ", ".join(f"{NAMES[meth]} {g:+.2f}" for meth, g in gain.items()) + ".")
            if all(flat):
                warnings.append(f"on {short_name(m)} the spread of accuracy over orders is within sampling noise "
                                "(two binomial standard errors at p = 0.5) for every method")
    return " ".join(lines) + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)
