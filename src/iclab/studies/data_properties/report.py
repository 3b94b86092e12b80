"""The data-properties report, from the stored run's classification rows."""

from __future__ import annotations

import numpy as np

from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.data_properties import figures as figs
from iclab.studies.data_properties.config import DataPropertiesConfig, model_label

#: "well above chance": ICL accuracy at least this far above 1 / ways
ICL_MARGIN = 0.2
#: ICL is called transient when its peak over training is at least this far above its final value
TRANSIENCE_DROP = 0.1
ICL, IWL, TRAINED = "fewshot-holdout", "no-support", "fewshot-trained"


class Results:
    """The classification rows of one model: its final values and its curves over training.

    ``rows`` are the run's rows; ``model`` the model's label. For a loaded model (rows with no
    step) the final values are its only ones and there are no curves.
    """

    def __init__(self, rows: Rows, model: str):
        self.name = model
        self.rows = rows.where(probe="classification", model=model)
        steps = [s for s in self.rows.unique("step") if s is not None]
        self.trained = bool(steps)
        self.final_step = max(steps) if steps else None
        self.final = self.rows.where(step=self.final_step) if steps else self.rows
        self.sets = [s for s in figs.PANELS if self.final.where(label=s)]

    def value(self, metric: str, s: str) -> float:
        return self.final.value(metric, label=s)

    def curve(self, s: str, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of ``metric`` on set ``s`` over training."""
        return self.rows.where(metric=metric, label=s).series("step")

    def peak(self, s: str = ICL) -> tuple[int, float]:
        """The step and value of the highest accuracy on ``s`` over training."""
        steps, values = self.curve(s)
        i = int(np.argmax(values))
        return int(steps[i]), float(values[i])


def report(cfg: DataPropertiesConfig, run: Run) -> Report:
    rows = run.load_rows()
    loaded = run.meta.get("model")
    names = [loaded] if loaded else [model_label(p) for p in cfg.p_bursty_values()]
    res = [Results(rows, n) for n in names]
    sections = [Section("ICL and IWL at the end of training", final_text(cfg, res),
                        figures=[Figure(run.save_figure(figs.icl_vs_iwl(
                            names, np.array([r.value("accuracy", ICL) for r in res]),
                            np.array([r.value("accuracy", IWL) for r in res]),
                            res[0].value("chance", ICL), res[0].value("chance", IWL)), "icl_vs_iwl"),
                            "Final accuracy of each model on holdout classes with fresh labels (ICL) and on "
                            "trained classes absent from the context (IWL); dashed: chance.")],
                        tables=[final_table(res)])]
    if not loaded:
        curves = {r.name: {s: r.curve(s) for s in r.sets} for r in res}
        chance = {s: res[0].value("chance", s) for s in res[0].sets}
        ot = run.save_figure(figs.over_training(curves, chance), "over_training")
        sections.append(Section("Over training", transience_text(cfg, res),
                                figures=[Figure(ot, "Accuracy against the training step for each model, one panel "
                                                    "per prompt set (dashed: chance).")]))
    sections += filter(None, [training_section(run, rows)])
    sections.append(Section("World and definitions", world_text(cfg)))
    title = "Data distributional properties and emergent in-context learning"
    return Report(title=title if not loaded else f"{title}: {loaded}", summary=summary(cfg, run, res),
                  sections=sections)


def final_table(res: list[Results]) -> Table:
    cols = ["model", "ICL accuracy", "ICL among context labels", "ICL chance", "IWL accuracy", "IWL chance"]
    trained = all(TRAINED in r.sets for r in res)
    if trained:
        cols += ["trained, fresh labels: accuracy", "trained, fresh labels: own label"]
    out = []
    for r in res:
        row = [r.name, r.value("accuracy", ICL), r.value("context_accuracy", ICL), r.value("chance", ICL),
               r.value("accuracy", IWL), r.value("chance", IWL)]
        if trained:
            row += [r.value("accuracy", TRAINED), r.value("own_label", TRAINED)]
        out.append(row)
    return Table(cols, out, caption="Accuracy: the argmax over every label token is the query's label. Among "
                 "context labels: the argmax over the labels of the context pairs only. ICL chance: 1 / ways (a "
                 "model that picks one of the context's labels); IWL chance: the largest share of one label under "
                 "the Zipf law. Own label: the share of predictions that are the class's trained label, not the "
                 "sequence's.")


def final_text(cfg: DataPropertiesConfig, res: list[Results]) -> str:
    parts = [f"{r.name}: ICL {r.value('accuracy', ICL):.2f}, IWL {r.value('accuracy', IWL):.2f}" for r in res]
    return ("; ".join(parts) + f" (chance: ICL {res[0].value('chance', ICL):.2f}, IWL "
            f"{res[0].value('chance', IWL):.3f}; {cfg.probe.n_prompts} sequences per set).")


def findings(cfg: DataPropertiesConfig, res: list[Results]) -> str:
    """This run's findings from its numbers, flagging what contradicts Chan et al.'s: bursty
    training (p_bursty ≥ 0.5) gives ICL on holdout classes well above chance, non-bursty training
    (p_bursty = 0) does not. A bursty model whose ICL emerged and then faded (:func:`transient`)
    is said to be so, not flagged: it did learn in context, and lost it as Singh et al. (2023) found."""
    out, warnings = [], []
    by_p = {p: r for p, r in zip(cfg.p_bursty_values(), res)}
    chance = res[0].value("chance", ICL)
    for p, r in by_p.items():
        icl = r.value("accuracy", ICL)
        above = icl >= chance + ICL_MARGIN
        if not above and transient(r):
            step, peak = r.peak(ICL)
            out.append(f"with p_bursty = {p:g} the model learns in context and then loses it (holdout accuracy "
                       f"{peak:.2f} at step {step}, {icl:.2f} at step {r.final_step}, chance {chance:.2f}; IWL "
                       f"{r.value('accuracy', IWL):.2f} at the end): transient ICL, as Singh et al. (2023) found "
                       "with long training")
            continue
        out.append(f"with p_bursty = {p:g} the model {'learns' if above else 'does not learn'} in context "
                   f"(holdout accuracy {icl:.2f}, chance {chance:.2f})")
        if p >= 0.5 and not above:
            warnings.append(f"bursty training (p_bursty = {p:g}) should give ICL on holdout classes well above "
                            f"chance (accuracy < {chance + ICL_MARGIN:.2f} here)")
        if p == 0 and above:
            warnings.append(f"non-bursty training (p_bursty = 0) should not give ICL (accuracy ≥ "
                            f"{chance + ICL_MARGIN:.2f} here)")
    text = "; ".join(out) + "."
    text = text[0].upper() + text[1:]
    return text + "".join(f" ⚠ Contradicts the expected finding: {w}." for w in warnings)


def transient(r: Results) -> bool:
    """Whether ``r``'s ICL rose well above chance over training (by ``ICL_MARGIN``) and then fell by at
    least ``TRANSIENCE_DROP`` from its peak by the end."""
    if not r.trained:
        return False
    _, peak = r.peak(ICL)
    return peak - r.value("accuracy", ICL) >= TRANSIENCE_DROP and peak >= r.value("chance", ICL) + ICL_MARGIN


def transience_text(cfg: DataPropertiesConfig, res: list[Results]) -> str:
    out = []
    for r in res:
        step, peak = r.peak(ICL)
        final = r.value("accuracy", ICL)
        if transient(r):
            out.append(f"{r.name}: ICL is transient here, peaking at {peak:.2f} at step {step} and falling to "
                       f"{final:.2f} by step {r.final_step}")
        else:
            out.append(f"{r.name}: no transience by step {r.final_step} (peak {peak:.2f} at step {step}, final "
                       f"{final:.2f})")
    return ("; ".join(out) + f". Transient: the peak is at least {TRANSIENCE_DROP:g} above the final value. "
            "Singh et al. (2023) found ICL fading with much longer training as IWL takes over.")


def summary(cfg: DataPropertiesConfig, run: Run, res: list[Results]) -> str:
    w, m = cfg.world, cfg.model
    if not res[0].trained:
        return (f"The loaded model {res[0].name} on the world's evaluation sequences. " + final_text(cfg, res) +
                " The world must be the one the model was trained on (same parameters and seed) for the classes "
                "and labels to mean what they say.")
    arrays = run.load_arrays(res[0].name)
    size, steps = int(arrays["n_params"]), int(arrays["final_step"])
    tokens = steps * cfg.train.batch_size * w.seq_len
    kind = "attention-only " if m.attn_only else ""
    return (f"{findings(cfg, res)}\n\n"
            f"One {kind}{m.family} model ({m.n_layers} layers, width {m.d_model}, {size / 1e6:.2f}M parameters) per "
            f"burstiness, trained {steps} steps ({tokens / 1e6:.1f}M tokens) on sequences of {w.context} "
            f"exemplar–label pairs and a query, {w.n_classes} classes with {w.labels} labels, Zipf exponent "
            f"{w.zipf_exponent:g}, bursts of {w.shots} shots × {w.ways} ways, exemplars of {w.exemplar_len} tokens "
            f"with within-class variation {w.variation:g}. " + final_text(cfg, res) + " Chan et al. (2022): "
            "bursty training data gives in-context learning on unseen classes, non-bursty data does not; a Zipfian "
            "class distribution (α ≈ 1) gives both ICL and in-weights learning, a uniform one with many classes "
            "mostly ICL.")


def world_text(cfg: DataPropertiesConfig) -> str:
    return ("A class is a prototype of L feature tokens and E exemplars, each token of which differs from the "
            "prototype with probability v. A sequence is P exemplar–label pairs and a query exemplar; the label of "
            "a training class is fixed. Bursty training sequences (probability p_bursty) hold `ways` classes "
            "`shots` times each, the query being one of them; the others draw every class i.i.d. from the Zipf law "
            "p(c) ∝ (c + 1)^-α. ICL is measured on holdout classes (never trained) given fresh labels in each "
            "sequence, `eval_shots` pairs of each of `ways` classes; IWL on trained classes whose query class is "
            "absent from the context. Accuracy: the argmax over the label tokens after the query is its label."
            "\n\nWorld: " + ", ".join(f"{k} = {v}" for k, v in cfg.world.model_dump().items()) +
            f". Models trained at p_bursty = {', '.join(f'{p:g}' for p in cfg.p_bursty_values())}.")
