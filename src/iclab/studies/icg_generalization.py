"""Study ``icg-generalization``: in-context generation (ICG) and its generalization.

Spec: ``shared/spec/icg.md`` (Jiang et al., "On the In-context Generation of Language
Models", EMNLP 2024). Train a causal LM on documents of the ICG world (a mode, an
outline of topics, paragraphs written from compositional topics; only repeated topics R
are ever repeated in training), then measure ICTR_X(k), the share of sampled next
paragraphs that continue the prompt's topic, for X ∈ {R, C, U} and k shots, against the
untrained model (step 0) and the Bayes-optimal predictor of the training distribution
(which repeats R topics and not C or U). ICTR on C and U above that reference is ICG
generalization. With ``--model PATH`` a saved model over the world's 324 tokens is
measured instead of training one (e.g. a model of another run on another world setting).

Knobs: composition arity M (``world.arity``, with ``world.n_subtopics`` K), the share of
repeated topics r_R (``world.r_repeat``), γ (``world.gamma``), model size
(``model.size``, a row of :data:`SIZES`), heads H (``model.n_heads``) and the attention
window W (``model.window``: sliding-window attention, any length, shorter than a
paragraph too). The preset's ``sweep:`` section is the default grid of ``iclab sweep``;
:func:`sweep_sections` draws the sweep's figures (heat map over M × r_R with R/C/U
cells per model, ICTR vs k, phase plot over r_R).

Choices stated here (the paper's generator and training recipe are not public): a
malformed generation (a special token among its L tokens) counts as not repeating;
attribution is the argmax over all topics; the ``cpu`` preset shrinks the world (8
paragraphs of 12 tokens, 81 topics at both M = 2 and M = 4, γ = 0.3, p_rep = 0.5) so
that a 0.6M-parameter model learns it in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field, field_validator, model_validator

from iclab.config import Frozen, TrainConfig
from iclab.models.build import ModelSpec, build_model, n_params
from iclab.models.load import load_model
from iclab.probes.ictr import ICTR, ICTRPrompts
from iclab.probes.result import Row
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies import icg_generalization_figures as figs
from iclab.train.loop import train
from iclab.worlds.icg import TOPIC_SETS, ICGWorld

# name: (n_layers, d_model, n_heads); llama with MLP width 4 d_model and the world's 324
# tokens. Parameters: tiny 0.17M, mini 0.61M (cpu), XS 4.4M, S 14.4M, M 33.9M, L 114M,
# XL 237M: the paper-scale range of about 4M to 234M.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 64, 4),
    "mini": (2, 128, 4),
    "XS": (4, 256, 4),
    "S": (6, 384, 6),
    "M": (8, 512, 8),
    "L": (12, 768, 12),
    "XL": (16, 960, 15),
}


class ICGModel(Frozen):
    """The model trained on the ICG world: a size from :data:`SIZES` and the H, W knobs.

    Parameters
    ----------
    size : str, default "mini"
        A row of SIZES: (n_layers, d_model, n_heads).
    family : {"llama", "gpt2", "mistral"}, default "llama"
        With a ``window``, llama becomes mistral (llama with sliding-window attention).
    n_heads : int or None, default None
        H; None takes the size's. ``d_model`` must be divisible by it.
    window : int or None, default None
        W, sliding attention window in tokens: a token sees itself and the W - 1 tokens
        before it. Any W ≥ 1, also shorter than a paragraph.
    max_len : int, default 2048
        Longest sequence (GPT-2's position table; RoPE's cache size).
    """

    size: str = "mini"
    family: Literal["llama", "gpt2", "mistral"] = "llama"
    n_heads: int | None = Field(None, ge=1)
    window: int | None = Field(None, ge=1)
    max_len: int = Field(2048, ge=8)

    @field_validator("size")
    @classmethod
    def _size(cls, v: str) -> str:
        if v not in SIZES:
            raise ValueError(f"unknown size; known: {', '.join(SIZES)}")
        return v

    @model_validator(mode="after")
    def _check(self):
        self.spec()  # ModelSpec's own checks (heads divide d_model, window needs mistral)
        return self

    def spec(self) -> ModelSpec:
        layers, d_model, heads = SIZES[self.size]
        family = "mistral" if self.window is not None and self.family == "llama" else self.family
        return ModelSpec(family=family, n_layers=layers, d_model=d_model, n_heads=self.n_heads or heads,
                         window=self.window, max_len=self.max_len)

    @property
    def label(self) -> str:
        """Model name in rows and figures: the size, then H and W when set (``mini-H2-W8``)."""
        return self.size + (f"-H{self.n_heads}" if self.n_heads else "") + (f"-W{self.window}" if self.window else "")


class ICTRSettings(Frozen):
    """How ICTR is measured (see :class:`iclab.probes.ictr.ICTR`).

    Parameters
    ----------
    shots : list of int, default [1, 2, 3, 5, 8]
        k values of the ICTR-vs-k curve, at step 0 and at the end of training; each
        below ``world.n_paragraphs`` (the prompt and the generation fit in a document).
    report_shot : int, default 5
        The k of the summary table and of the curve over training (every eval step).
    n_prompts : int, default 128
        Prompts per topic set (nested over k).
    batch_size : int, default 128
    """

    shots: list[int] = Field(default_factory=lambda: [1, 2, 3, 5, 8], min_length=1)
    report_shot: int = Field(5, ge=1)
    n_prompts: int = Field(128, ge=1)
    batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.report_shot not in self.shots:
            raise ValueError(f"report_shot={self.report_shot} must be one of shots {self.shots}")
        return self

    def probe(self, seed: int, shots: list[int] | None = None) -> ICTR:
        return ICTR(shots=shots or self.shots, n_prompts=self.n_prompts, batch_size=self.batch_size, seed=seed)


class ICGGeneralizationConfig(Frozen):
    """Config of the icg-generalization study (presets in ``configs/icg-generalization/``).

    ``sweep`` is the default grid of ``iclab sweep`` (dotted key → values); a single run
    ignores it.
    """

    seed: int = 0
    world: ICGWorld = ICGWorld()
    model: ICGModel = ICGModel()
    train: TrainConfig = TrainConfig()
    probe: ICTRSettings = ICTRSettings()
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        if max(self.probe.shots) >= self.world.n_paragraphs:
            raise ValueError(f"probe.shots {self.probe.shots} must stay below world.n_paragraphs = "
                             f"{self.world.n_paragraphs}: a k-shot prompt and its generated paragraph must fit "
                             "in a training document (longer ones test length extrapolation, not ICG)")
        seq = 1 + self.world.n_paragraphs * (self.world.paragraph_len + 1)
        if self.model.max_len < seq:
            raise ValueError(f"model.max_len={self.model.max_len} is shorter than a document "
                             f"({seq} tokens); raise model.max_len")
        return self


# ----------------------------------------------------------------------------- measuring


def ictr_table(rows: list[Row], k: int, trained: str, untrained: str | None) -> Table:
    """ICTR at k shots per topic set: trained (with CI), untrained, Bayes reference, malformed."""
    def v(metric, s, model):
        return next((r.value for r in rows if r.metric == metric and r.label == s and r.pos == k
                     and _tag(r) == model), float("nan"))
    out = []
    for s in TOPIC_SETS:
        if not any(r.label == s for r in rows):
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


def _tag(r: Row) -> str:
    """'untrained' for step 0, 'trained' for a later step (callers keep step 0 and the last one),
    the model's label for rows of a loaded model (no step)."""
    return r.model if r.step is None else ("untrained" if r.step == 0 else "trained")


def _final(rows: list[Row], last_step: int) -> list[Row]:
    return [r for r in rows if r.probe == "ictr" and r.step in (0, last_step)]


def curves_by_k(rows: list[Row]) -> dict[str, dict[str, np.ndarray]]:
    """{tag: {set: array (k, 4) of k, ictr, lo, hi}} plus "Bayes-optimal" from the bayes rows."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for tag in dict.fromkeys(_tag(r) for r in rows):
        sel = [r for r in rows if _tag(r) == tag]
        out[tag] = {}
        for s in dict.fromkeys(r.label for r in sel):
            ks = sorted({r.pos for r in sel if r.label == s and r.metric == "ictr"})
            val = {(r.metric, r.pos): r.value for r in sel if r.label == s}
            out[tag][s] = np.array([[k, val["ictr", k], val["ictr_lo", k], val["ictr_hi", k]] for k in ks])
    ref_tag = next(iter(out))
    sel = [r for r in rows if _tag(r) == ref_tag and r.metric == "bayes_ictr"]
    out["Bayes-optimal"] = {s: np.array(sorted((r.pos, r.value, r.value, r.value) for r in sel if r.label == s))
                            for s in dict.fromkeys(r.label for r in sel)}
    return out


def run_trained(cfg: ICGGeneralizationConfig, run: Run) -> Report:
    """Train one model on the world, measuring ICTR at step 0, during training and at the end."""
    world, name = cfg.world, cfg.model.label
    model = build_model(cfg.model.spec(), world.vocab_size, seed=cfg.seed)
    size = n_params(model)
    probe = cfg.probe.probe(cfg.seed)
    curve = cfg.probe.probe(cfg.seed, shots=[cfg.probe.report_shot])
    prompts = probe.prompts(world, np.random.default_rng([cfg.seed, 1]))

    def measure(m, step: int) -> list[Row]:
        p = probe if step in (0, cfg.train.steps) else curve
        return p(m, prompts).tagged(step=step, model=name).rows

    result = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name), probe=measure,
                   label=name)
    model.save_pretrained(run.path / "models" / name)
    rows = result.rows
    run.save_rows(rows)

    k, last = cfg.probe.report_shot, cfg.train.steps
    final = _final(rows, last)
    by_k = run.save_figure(figs.ictr_vs_k(curves_by_k(final)), "ictr_vs_k")
    over_training = run.save_figure(figs.ictr_over_training(rows, k), "ictr_over_training")
    seq = 1 + world.n_paragraphs * (world.paragraph_len + 1)
    tokens = cfg.train.steps * cfg.train.batch_size * seq
    table = ictr_table(final, k, "trained", "untrained")
    return Report(
        title=f"In-context generation on the ICG world (M = {world.arity}, r_R = {world.r_repeat})",
        summary=_summary(cfg, size, tokens, final, k),
        sections=[
            Section("ICTR by topic set", tables=[table]),
            Section("ICTR against the number of shots",
                    "Trained model (solid, 95% Wilson band), untrained model (step 0, dotted) and the "
                    "Bayes-optimal predictor of the training distribution (dashed) on the same prompts.",
                    figures=[Figure(by_k, "ICTR_X(k) for X = R, C, U.")]),
            Section("Over training", figures=[Figure(over_training, f"ICTR at k = {k} and training loss "
                                                     "against the training step.")]),
            Section("World and definitions", _world_text(cfg)),
        ])


def run_pretrained(cfg: ICGGeneralizationConfig, run: Run, model_name: str) -> Report:
    """Measure ICTR of a saved causal LM over the world's 324 tokens (no training)."""
    model, _ = load_model(model_name, with_tokenizer=False)
    probe = cfg.probe.probe(cfg.seed)
    prompts: ICTRPrompts = probe.prompts(cfg.world, np.random.default_rng([cfg.seed, 1]))
    rows = probe(model, prompts).tagged(model=model_name).rows
    run.save_rows(rows)
    k = cfg.probe.report_shot
    by_k = run.save_figure(figs.ictr_vs_k(curves_by_k(rows)), "ictr_vs_k")
    return Report(
        title=f"In-context generation of {model_name} (M = {cfg.world.arity}, r_R = {cfg.world.r_repeat})",
        summary=f"ICTR of {model_name} on {cfg.probe.n_prompts} prompts per topic set. The world must be the "
                "one the model was trained on (same world parameters and seed) for R, C and U to mean "
                "what they say.",
        sections=[Section("ICTR by topic set", tables=[ictr_table(rows, k, model_name, None)]),
                  Section("ICTR against the number of shots", figures=[Figure(by_k, "ICTR_X(k).")]),
                  Section("World and definitions", _world_text(cfg))])


def run_study(cfg: ICGGeneralizationConfig, run: Run, model_name: str | None = None) -> Report:
    if model_name:
        return run_pretrained(cfg, run, model_name)
    return run_trained(cfg, run)


def _summary(cfg: ICGGeneralizationConfig, size: int, tokens: int, rows: list[Row], k: int) -> str:
    w = cfg.world

    def v(metric, s, tag="trained"):
        return next((r.value for r in rows if r.metric == metric and r.label == s and r.pos == k and _tag(r) == tag),
                    float("nan"))
    sets = [s for s in TOPIC_SETS if any(r.label == s for r in rows)]
    found = "; ".join(f"ICTR_{s} = {v('ictr', s):.2f} (untrained {v('ictr', s, 'untrained'):.2f}, "
                      f"Bayes-optimal {v('bayes_ictr', s):.2f})" for s in sets)
    return (f"A {cfg.model.spec().family} model '{cfg.model.label}' ({size / 1e6:.2f}M parameters) trained "
            f"{cfg.train.steps} steps ({tokens / 1e6:.1f}M tokens) on documents of {w.n_paragraphs} paragraphs of "
            f"{w.paragraph_len} tokens, topics of arity M = {w.arity} ({w.n_topics} topics; "
            f"|R| = {w.topic_set('R').size}, |C| = {w.topic_set('C').size}, |U| = {w.topic_set('U').size}), "
            f"r_R = {w.r_repeat}, γ = {w.gamma}, p_rep = {w.p_rep}. At k = {k} shots: {found}. "
            "Jiang et al. (2024): trained models repeat R topics; with enough compositionality (M = 3, 4) also "
            "C and U topics, which the Bayes-optimal predictor of the training distribution does not repeat; at "
            "M = 2 they repeat R but not U.")


def _world_text(cfg: ICGGeneralizationConfig) -> str:
    return ("A k-shot prompt is <bos> x_1 <sep> ... x_k <sep> with x_i ~ p(x | t) for a topic t drawn uniformly "
            "from the set; the model samples L tokens at temperature 1. The generation is attributed to "
            "argmax_t' log p(x | t') over all topics R ∪ C ∪ U; a generation holding a special token is "
            "malformed and counts as a miss. Prompts are nested over k (the k-shot prompt is the first k "
            "paragraphs of the k_max-shot one). The Bayes-optimal reference is the mean over the same prompts of "
            "p(β_{k+1} = t | x_1..x_k) under the training distribution.\n\n"
            f"World: {cfg.world.model_dump()}.")


# ----------------------------------------------------------------------------- sweeps


def _trial_summary(path: Path, values: dict[str, Any]) -> dict[str, Any] | None:
    """Config values and step-0/final ICTR rows of one finished trial (None if it has none)."""
    run = Run(path)
    cfg = yaml.safe_load(run.config_yaml) or {}
    rows = [r for r in run.load_rows() if r.probe == "ictr"]
    if not rows:
        return None
    world, model, probe = cfg.get("world", {}), cfg.get("model", {}), cfg.get("probe", {})
    steps = [r.step for r in rows if r.step is not None]
    final = [r for r in rows if r.step in (0, max(steps))] if steps else rows
    return {"M": world.get("arity"), "r_R": world.get("r_repeat"), "gamma": world.get("gamma"),
            "group": _group_label(model, values), "k": probe.get("report_shot", 5), "rows": final}


_CELL_KEYS = {"world.arity", "world.n_subtopics", "world.r_repeat", "model.size", "model.n_heads", "model.window"}


def _group_label(model: dict, values: dict[str, Any]) -> str:
    """The heat map a trial belongs to: its model (size, H, W) and any grid axis other than M, K, r_R."""
    label = str(model.get("size", "?"))
    if model.get("n_heads"):
        label += f" H{model['n_heads']}"
    if model.get("window"):
        label += f" W{model['window']}"
    others = [f"{k.split('.')[-1]}={v}" for k, v in values.items() if k not in _CELL_KEYS]
    return " ".join([label, *others])


def sweep_sections(trials: list, save_figure: Callable[[Any, str], str]) -> list[Section]:
    """The sweep's figures: ICTR heat maps over M × r_R (R/C/U cells, one row per model),
    ICTR vs k of every trial, and the phase plot over r_R."""
    summaries = {}
    for t in trials:
        s = _trial_summary(Path(t.path), t.values)
        if s is not None:
            summaries[t.name] = s
    if not summaries:
        return []
    k = next(iter(summaries.values()))["k"]

    def val(s, metric, topic_set, tag="trained"):
        return next((r.value for r in s["rows"] if r.metric == metric and r.label == topic_set and r.pos == k
                     and _tag(r) == tag), float("nan"))
    table = Table(["trial", "model", "M", "r_R", "γ", "ICTR R", "ICTR C", "ICTR U", "untrained R", "Bayes R",
                   "Bayes C", "Bayes U"],
                  [[name, s["group"], s["M"], s["r_R"], s["gamma"], val(s, "ictr", "R"), val(s, "ictr", "C"),
                    val(s, "ictr", "U"), val(s, "ictr", "R", "untrained"), val(s, "bayes_ictr", "R"),
                    val(s, "bayes_ictr", "C"), val(s, "bayes_ictr", "U")] for name, s in summaries.items()],
                  caption=f"ICTR at k = {k} shots at the end of training.")
    cells = [(s["group"], s["M"], s["r_R"], {x: val(s, "ictr", x) for x in TOPIC_SETS}) for s in summaries.values()]
    heat = save_figure(figs.sweep_heatmaps(cells), "sweep_heatmap")
    curves = {name: curves_by_k([r for r in s["rows"] if _tag(r) == "trained"])["trained"]
              for name, s in summaries.items()}
    by_k = save_figure(figs.sweep_ictr_vs_k(curves), "sweep_ictr_vs_k")
    sections = [Section("ICTR over the grid", tables=[table]),
                Section("Heat map over M × r_R", "Each cell holds ICTR at the end of training for R, C and U "
                        "topics (left to right); one row of panels per model.",
                        figures=[Figure(heat, f"ICTR (k = {k}) by composition arity M and share of repeated "
                                        "topics r_R.")]),
                Section("ICTR against the number of shots", figures=[Figure(by_k, "ICTR_X(k) of every trial.")])]
    if len({c[2] for c in cells}) > 1:
        phase = save_figure(figs.phase_plot(cells), "sweep_phase")
        sections.append(Section("Phases over r_R", "Underfit (nothing repeated) → overfit (only R repeated) → "
                                "generalize (U repeated too), as r_R grows.",
                                figures=[Figure(phase, f"ICTR (k = {k}) against r_R, one panel per M.")]))
    return sections
