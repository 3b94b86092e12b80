"""The bayesian-icl report, from the stored run's rows (and the model's size from its arrays)."""

from __future__ import annotations

import numpy as np

from iclab.probes.ginc_accuracy import cell_label
from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.bayesian_icl import figures as figs
from iclab.studies.common import training_section
from iclab.studies.bayesian_icl.config import LSTM, MODEL, BayesianICLConfig

#: the finding's margin: at the largest k the model should be within this of the Bayes-optimal predictor
BAYES_MARGIN = 0.10
#: the references, as (row metric, name in figures and tables)
REFERENCES = (("bayes_accuracy", "Bayes-optimal"), ("bayes_all_accuracy", "Bayes-optimal (all concepts)"),
              ("pretrain_lm_accuracy", "pretraining LM"))
SET_NAMES = {"id": "in distribution", "unseen-concepts": "unseen concepts", "no-delimiters": "no delimiters",
             "shuffled-delimiters": "shuffled delimiters"}


class Results:
    """The final in-context accuracies of one model of a run, queried by (prompt set, l, k).

    ``model`` is the model's rows: the last training step, or a loaded model's rows;
    ``untrained`` the step-0 rows (empty for a loaded model). The references do not depend on
    the model and are read from ``model``.
    """

    def __init__(self, rows: Rows, model: str):
        ginc = rows.where(probe="ginc", model=model)
        steps = [s for s in ginc.unique("step") if s is not None]
        self.trained = bool(steps)
        self.model = ginc.where(step=max(steps)) if steps else ginc
        self.untrained = ginc.where(step=0) if steps else Rows()
        self.shots = sorted(int(k) for k in self.model.where(metric="accuracy").unique("pos"))
        labels = self.model.unique("label")
        self.sets = [v for v in SET_NAMES if any(lab.startswith(v + " ") for lab in labels)]
        self.lengths = sorted({int(lab.rsplit("=", 1)[1]) for lab in labels})

    def value(self, metric: str, variant: str, l: int, k: int, untrained: bool = False) -> float:
        rows = self.untrained if untrained else self.model
        return rows.value(metric, label=cell_label(variant, l), pos=k)

    def curve(self, metric: str, variant: str, l: int, untrained: bool = False) -> np.ndarray:
        """(k, accuracy) pairs, array (k, 2)."""
        rows = self.untrained if untrained else self.model
        ks, values = rows.where(metric=metric, label=cell_label(variant, l)).series("pos")
        return np.stack([ks, values], axis=1)


def report(cfg: BayesianICLConfig, run: Run) -> Report:
    rows = run.load_rows()
    loaded = run.meta.get("model")
    res = Results(rows, loaded or MODEL)
    lstm = Results(rows, LSTM) if not loaded and rows.where(model=LSTM) else None
    K = res.shots[-1]
    figures = []

    panels = {}
    for l in res.lengths:
        lines = {MODEL if res.trained else "model": res.curve("accuracy", "id", l)}
        if lstm is not None:
            lines["LSTM"] = lstm.curve("accuracy", "id", l)
        if res.trained:
            lines["untrained"] = res.curve("accuracy", "id", l, untrained=True)
        for metric, ref in REFERENCES:
            if metric != "bayes_all_accuracy":
                lines[ref] = res.curve(metric, "id", l)
        panels[l] = lines
    by_k = run.save_figure(figs.accuracy_vs_k(panels), "accuracy_vs_k")
    figures.append(Section(
        "Accuracy against the number of examples",
        f"In-distribution prompts (pretraining concepts, a delimiter after each example), {cfg.probe.n_prompts} "
        "per example length l, nested over k. Lines: the trained model (and the LSTM baseline, if trained), "
        "the untrained model (step 0), the "
        "Bayes-optimal in-context predictor (exact posterior over the pretraining concepts and the start "
        "property by the forward algorithm, knowing the prompt format) and the Bayes-optimal language model of "
        "the pretraining documents reading the prompt as the start of a document (what pretraining teaches).",
        figures=[Figure(by_k, "In-context accuracy against k, one panel per l.")],
        tables=[id_table(res, lstm)]))

    few = [k for k in res.shots if k <= 2]
    if len(few) > 1 and few[0] == 0:
        bars = {l: {"model": np.array([res.value("accuracy", "id", l, k) for k in few]),
                    "Bayes-optimal": np.array([res.value("bayes_accuracy", "id", l, k) for k in few])}
                for l in res.lengths}
        zf = run.save_figure(figs.zero_vs_few_shot(bars, few), "zero_vs_few_shot")
        figures.append(Section("Zero-shot against few-shot", zero_few_text(res, few),
                               figures=[Figure(zf, "Accuracy at k = " + ", ".join(map(str, few)) +
                                               " (bars: model; dashes: Bayes-optimal).")]))

    if len(res.sets) > 1:
        sets = {}
        for v in res.sets:
            sets[SET_NAMES[v]] = {l: {"model": res.curve("accuracy", v, l),
                                      "Bayes-optimal": res.curve("bayes_accuracy", v, l),
                                      **({"Bayes-optimal (all concepts)": res.curve("bayes_all_accuracy", v, l)}
                                         if v == "unseen-concepts" else {})} for l in res.lengths}
        ps = run.save_figure(figs.prompt_sets(sets), "prompt_sets")
        figures.append(Section(
            "In distribution against out of distribution",
            "Unseen concepts: examples from the concepts left out of pretraining; the Bayes-optimal predictor with "
            "the pretraining prior has no right concept to find (dashed), the one that knows every concept "
            "does (dotted). No delimiters / shuffled delimiters: the in-distribution prompts' very examples with "
            "the delimiters removed or moved to random places, a change of format only, so the Bayes-optimal "
            "predictor (which knows where the examples are) is unchanged while the model reads other tokens.",
            figures=[Figure(ps, "Accuracy against k per prompt set; one colour per l.")],
            tables=[sets_table(res, K)]))

    if res.trained:
        curves = {}
        for l in res.lengths:
            for k in cfg.probe.over_training():
                s = Rows(r for r in rows if r.step is not None).where(
                    probe="ginc", metric="accuracy", label=cell_label("id", l), pos=k, model=MODEL).series("step")
                curves[l, k] = s
        loss = rows.where(probe="train", metric="loss", model=MODEL).series("step")
        ot = run.save_figure(figs.over_training(curves, loss), "over_training")
        figures.append(Section("Over training", figures=[Figure(ot, "In-distribution accuracy at the smallest and "
                                                                "largest k (dotted: k = 0) and the training loss "
                                                                "against the step.")]))

    figures += filter(None, [training_section(run, run.load_rows())])
    figures.append(Section("World and definitions", world_text(cfg)))
    title = "In-context learning as implicit Bayesian inference on the GINC world"
    return Report(title=title if res.trained else f"{title}: {loaded}", summary=summary(cfg, run, res, lstm),
                  sections=figures)


def id_table(res: Results, lstm: Results | None) -> Table:
    cols = ["l", "k", "model"] + (["LSTM"] if lstm is not None else []) + (["untrained"] if res.trained else []) + \
        [n for _, n in REFERENCES]
    out = []
    for l in res.lengths:
        for k in res.shots:
            row = [l, k, res.value("accuracy", "id", l, k)]
            if lstm is not None:
                row.append(lstm.value("accuracy", "id", l, k))
            if res.trained:
                row.append(res.value("accuracy", "id", l, k, untrained=True))
            out.append(row + [res.value(m, "id", l, k) for m, _ in REFERENCES])
    return Table(cols, out, caption="In-distribution accuracy: the share of prompts whose argmax next token is the "
                 "answer (the true concept's most likely last token).")


def sets_table(res: Results, K: int) -> Table:
    out = []
    for v in res.sets:
        for l in res.lengths:
            out.append([SET_NAMES[v], l, res.value("accuracy", v, l, K)] +
                       [res.value(m, v, l, K) for m, _ in REFERENCES] + [res.value("bayes_undefined", v, l, K)])
    return Table(["prompt set", "l", f"model (k = {K})"] + [n for _, n in REFERENCES] + ["no posterior"], out,
                 caption=f"Accuracy at k = {K}. 'No posterior': share of prompts with probability 0 under every "
                 "pretraining concept, counted as misses of the Bayes-optimal predictor.")


def zero_few_text(res: Results, few: list[int]) -> str:
    worse = [l for l in res.lengths
             if any(res.value("accuracy", "id", l, k) < res.value("accuracy", "id", l, 0) for k in few[1:])]
    parts = "; ".join(f"l = {l}: " + ", ".join(f"k = {k} {res.value('accuracy', 'id', l, k):.2f}" for k in few)
                      for l in res.lengths)
    verdict = (f"Few-shot accuracy falls below zero-shot at l = {', '.join(map(str, worse))}" if worse
               else "Few-shot accuracy is never below zero-shot here")
    return (f"Model accuracy on in-distribution prompts: {parts}. {verdict}. Xie et al. (2022) saw few-shot fall "
            "below zero-shot in some GINC settings: the examples are unlike pretraining text (independent, "
            "joined by delimiters), which can mislead a model before enough of them pin the concept down.")


def summary(cfg: BayesianICLConfig, run: Run, res: Results, lstm: Results | None = None) -> str:
    w, K = cfg.world, res.shots[-1]
    lines = []
    if res.trained:
        size = int(run.load_arrays("model")["n_params"])
        steps = int(run.load_arrays("model")["final_step"])
        tokens = steps * cfg.train.batch_size * w.doc_len
        m = cfg.model
        lines.append(f"A {m.family} model ({m.n_layers} layers, width {m.d_model}, {size:,} parameters) "
                     f"trained {steps} steps ({tokens / 1e6:.1f}M tokens) on documents of {w.doc_len} tokens from "
                     f"{w.n_pretrain_concepts} of the world's {w.n_concepts} concepts ({w.n_entities} entities × "
                     f"{w.n_properties} properties, {w.n_symbols} symbols).")
    else:
        lines.append(f"The loaded model {run.meta.get('model')} on the world's prompts.")
    departures = []
    if w.transition_floor > 0:
        departures.append(f"every transition has probability at least {w.transition_floor:g} / n "
                          "(transition_floor)")
    if w.delimiter_transitions == "shared":
        departures.append("moves into and out of the delimiter are the same for every concept")
    if departures:
        lines.append("Unlike GINC's generator, and as the paper's analysis assumes, " + " and ".join(departures)
                     + ".")
    zero = res.shots[0]
    grows, near = [], []
    per_l = []
    for l in res.lengths:
        a0, aK = res.value("accuracy", "id", l, zero), res.value("accuracy", "id", l, K)
        b0, bK = res.value("bayes_accuracy", "id", l, zero), res.value("bayes_accuracy", "id", l, K)
        lmK = res.value("pretrain_lm_accuracy", "id", l, K)
        per_l.append(f"l = {l}: {a0:.2f} → {aK:.2f} (Bayes-optimal {b0:.2f} → {bK:.2f}, pretraining LM {lmK:.2f} "
                     f"at k = {K})")
        grows.append(aK > a0)
        near.append(bK - aK <= BAYES_MARGIN)
    lines.append(f"In-distribution accuracy from k = {zero} to k = {K}, {cfg.probe.n_prompts} prompts per l: "
                 + "; ".join(per_l) + ".")
    if lstm is not None:
        size = int(run.load_arrays(LSTM)["n_params"])
        by_l = [f"l = {l}: {lstm.value('accuracy', 'id', l, zero):.2f} → {lstm.value('accuracy', 'id', l, K):.2f}"
                for l in res.lengths]
        lines.append(f"The LSTM baseline ({cfg.lstm.n_layers} layer(s), width {cfg.lstm.d_model}, {size:,} "
                     "parameters, same documents): " + "; ".join(by_l) + ".")
    if len(res.lengths) > 1:
        accK = [res.value("accuracy", "id", l, K) for l in res.lengths]
        trend = "grows" if all(b >= a for a, b in zip(accK, accK[1:])) else "does not grow monotonically"
        lines.append(f"At k = {K} accuracy {trend} with l (" + ", ".join(f"{a:.2f}" for a in accK) + ").")
    def mean(metric, v):
        return np.mean([res.value(metric, v, l, K) for l in res.lengths])
    ood = []
    for v in res.sets[1:]:
        ref = (f"Bayes-optimal {mean('bayes_accuracy', v):.2f} with the pretraining prior, "
               f"{mean('bayes_all_accuracy', v):.2f} knowing every concept" if v == "unseen-concepts"
               else f"Bayes-optimal {mean('bayes_accuracy', v):.2f}")
        ood.append(f"{SET_NAMES[v]} {mean('accuracy', v):.2f} ({ref})")
    if ood:
        lines.append(f"Mean accuracy over l at k = {K}: in distribution {mean('accuracy', 'id'):.2f} (Bayes-optimal "
                     f"{mean('bayes_accuracy', 'id'):.2f}); " + "; ".join(ood) + ".")
    lines.append("Xie et al. (2022): in-context accuracy grows with the number of examples k and their length l, "
                 "approaching the Bayes-optimal predictor, and fails on prompts out of distribution.")
    flags = []
    if not all(grows):
        flags.append("accuracy does not grow with k at l = " +
                     ", ".join(str(l) for l, g in zip(res.lengths, grows) if not g))
    if not all(near):
        far = [l for l, n in zip(res.lengths, near) if not n]
        flags.append(f"at k = {K} the model is more than {BAYES_MARGIN * 100:.0f} points below the Bayes-optimal "
                     "predictor at l = " + ", ".join(map(str, far)) + " (where the Bayes-optimal language model of "
                     "the pretraining documents reaches " + ", ".join(
                         f"{res.value('pretrain_lm_accuracy', 'id', l, K):.2f}" for l in far) + ")")
    if flags:
        lines.append("CONTRADICTS THE EXPECTED FINDING: " + "; ".join(flags) + ".")
    else:
        lines.append(f"Both hold here: accuracy grows with k at every l, and at k = {K} the model is within "
                     f"{BAYES_MARGIN * 100:.0f} points of the Bayes-optimal predictor at every l.")
    return " ".join(lines)


def world_text(cfg: BayesianICLConfig) -> str:
    return ("A concept θ is an HMM over hidden states (entity e, property p): entities move by a chain V shared "
            "by all concepts, properties by the concept's chain S_θ, and the state emits the token W[e, p] of a "
            "memorised table (property 0 emits the delimiter). A pretraining document is a run of one pretraining "
            "concept's HMM. A prompt holds k examples of l tokens from one concept, each starting at a uniform "
            "entity and a start property s_0 shared by the prompt, then the test input (l - 1 tokens); the answer "
            "is argmax_y p(y | test input, θ, s_0) under the true concept. Accuracy: the share of prompts whose "
            "argmax next token is the answer. The Bayes-optimal predictor is p(y | prompt) = Σ_{θ, s_0} "
            "p(θ, s_0 | prompt) p(y | test input, θ, s_0), the posterior computed exactly by the forward "
            "algorithm. The LSTM baseline, when trained, is an embedding, stacked LSTM layers and a linear "
            "read-out, trained like the transformer on the same documents.\n\n"
            "World: " + ", ".join(f"{k} = {v}" for k, v in cfg.world.model_dump().items()) + ".")
