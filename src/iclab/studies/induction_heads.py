"""Study ``induction-heads``: the induction-head phase change (Olsson et al. 2022).

Spec: ``shared/spec/mechanisms.md``, induction-heads. Train attention-only models of
each depth in ``layers`` on random tokens with a repeated segment; at each probe step,
score every head (induction, prefix-matching, previous-token, copying) on repeated
prompts and measure the in-context learning score. At the end, ablate the heads whose
induction score passes ``probe.ablate_min_score`` and measure the ICL score again.
With ``--model NAME_OR_PATH`` the same scores and ablation run on a pretrained model.

What it shows: in the 2-layer model the best induction score jumps within a narrow
window of steps, and the ICL score falls at the same time; the 1-layer model forms no
induction head; ablating the induction heads takes away most of the ICL score.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from iclab.config import Frozen, TrainConfig
from iclab.models.build import ModelSpec, build_model, n_params
from iclab.models.load import load_model
from iclab.probes.ablation import HeadAblation
from iclab.probes.icl_score import ICLScore
from iclab.probes.induction import InductionScores, top_heads
from iclab.probes.result import ProbeResult, Row
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies import induction_heads_figures as figs
from iclab.train.loop import train
from iclab.worlds.induction import RandomTokens, RepeatedTokens, repeated_prompts


class ProbeSettings(Frozen):
    """How the models are measured.

    Parameters
    ----------
    n_prompts : int, default 128
        Repeated prompts ``[r, r]`` scored at each probe step (fixed across steps).
    half : int or None, default None
        Length of ``r``; None means ``world.seq_len // 2`` for models trained here and 50
        for pretrained models.
    ablate_min_score : float, default 0.3
        Heads with an induction score at least this high are ablated at the end.
    ablate_max_heads : int, default 8
    ablation : {"mean", "zero"}, default "mean"
    batch_size : int, default 64
    """

    n_prompts: int = Field(128, ge=8)
    half: int | None = Field(None, ge=4)
    ablate_min_score: float = Field(0.3, ge=0, le=1)
    ablate_max_heads: int = Field(8, ge=1)
    ablation: str = Field("mean", pattern="^(mean|zero)$")
    batch_size: int = Field(64, ge=1)


class InductionHeadsConfig(Frozen):
    """Config of the induction-heads study (presets in ``configs/induction-heads/``)."""

    seed: int = 0
    world: RepeatedTokens = RepeatedTokens()
    model: ModelSpec = ModelSpec(attn_only=True)
    layers: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    train: TrainConfig = TrainConfig()
    probe: ProbeSettings = ProbeSettings()


def transition_step(steps: np.ndarray, best_scores: np.ndarray) -> int | None:
    """First step at which the best induction score passes halfway between its initial
    value and its final value; None if it never rises by at least 0.2."""
    lo, hi = best_scores[0], best_scores[-1]
    if hi - lo < 0.2:
        return None
    return int(steps[np.argmax(best_scores >= (lo + hi) / 2)])


def _curves(rows: list[Row], model: str) -> dict[str, np.ndarray]:
    """Per-step ICL score and best induction score of one model's probe rows."""
    steps = sorted({r.step for r in rows if r.model == model and r.probe == "icl"})
    icl = {r.step: r.value for r in rows if r.model == model and r.metric == "icl_score" and r.label is None}
    best = {s: max(r.value for r in rows if r.model == model and r.step == s and r.metric == "induction_score")
            for s in steps}
    return {"step": np.array(steps), "icl_score": np.array([icl[s] for s in steps]),
            "induction_score": np.array([best[s] for s in steps])}


def head_names(heads: list[tuple[int, int]]) -> str:
    return ", ".join(f"L{layer}H{head}" for layer, head in heads)


def measure(model, prompts, controls, cfg: InductionHeadsConfig, half: int) -> ProbeResult:
    """Head scores and ICL score (on repeated prompts and on the random-token controls)."""
    icl = ICLScore(early=half // 2, late=half + half // 2, batch_size=cfg.probe.batch_size)
    out = InductionScores(batch_size=cfg.probe.batch_size)(model, prompts)
    out.extend(icl(model, prompts))
    control = icl(model, controls).tagged(label="random-tokens")
    out.rows += control.rows
    out.arrays["loss_by_pos_random"] = control.arrays["loss_by_pos"]
    return out


def ablate(model, prompts, scores: np.ndarray, cfg: InductionHeadsConfig, half: int) -> tuple[ProbeResult, list]:
    heads = top_heads(scores, cfg.probe.ablate_max_heads, cfg.probe.ablate_min_score) or top_heads(scores, 1)
    icl = ICLScore(early=half // 2, late=half + half // 2, batch_size=cfg.probe.batch_size)
    probe = HeadAblation(heads=heads, icl=icl, mode=cfg.probe.ablation, label="induction heads")
    return probe(model, prompts), heads


def run_trained(cfg: InductionHeadsConfig, run: Run) -> Report:
    """Train one attention-only model per depth and trace the phase change."""
    half = cfg.probe.half or cfg.world.seq_len // 2
    prompt_rng = np.random.default_rng([cfg.seed, 1])
    prompts = repeated_prompts(prompt_rng, cfg.probe.n_prompts, half, 0, cfg.world.vocab)
    controls = RandomTokens(vocab=cfg.world.vocab, seq_len=2 * half).sample(prompt_rng, cfg.probe.n_prompts)

    rows: list[Row] = []
    final_scores, ablations, loss_curves, sizes = {}, {}, {}, {}
    for depth in cfg.layers:
        name = f"L{depth}"
        spec = cfg.model.model_copy(update={"n_layers": depth})
        model = build_model(spec, cfg.world.vocab_size, seed=cfg.seed + depth)
        sizes[name] = n_params(model)

        def probe(m, step, name=name):
            return measure(m, prompts, controls, cfg, half).tagged(step=step, model=name).rows

        result = train(model, cfg.world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name),
                       probe=probe, label=name)
        rows += result.rows
        model.save_pretrained(run.path / "models" / name)

        final = measure(model, prompts, controls, cfg, half)
        final_scores[name] = final.arrays
        loss_curves[f"{name} (step {cfg.train.steps})"] = final.arrays["loss_by_pos"]
        abl, heads = ablate(model, prompts, final.arrays["induction_score"], cfg, half)
        rows += abl.tagged(step=cfg.train.steps, model=name).rows
        ablations[name] = (abl.value("icl_score_intact"), abl.value("icl_score_ablated"),
                           head_names(heads), abl.value("icl_share_removed"))
        loss_curves[f"{name} ablated"] = abl.arrays["loss_by_pos_ablated"]
    run.save_rows(rows)

    curves = {name: _curves(rows, name) for name in final_scores}
    transitions = {name: transition_step(c["step"], c["induction_score"]) for name, c in curves.items()}
    phase = run.save_figure(figs.phase_change(curves, transitions), "phase_change")
    heat = run.save_figure(figs.score_heatmaps({n: a["induction_score"] for n, a in final_scores.items()},
                                               "induction_score"), "induction_heatmap")
    others = run.save_figure(figs.score_heatmaps({n: a["previous_token"] for n, a in final_scores.items()},
                                                 "previous_token"), "previous_token_heatmap")
    bars = run.save_figure(figs.ablation_bars({n: a[:3] for n, a in ablations.items()}), "ablation")
    by_pos = run.save_figure(figs.loss_by_position(loss_curves, half), "loss_by_position")

    table = Table(["model", "params", "best induction", "best prev-token", "best copying", "ICL score",
                   "ICL (random tokens)", "transition step", "ablated heads", "ICL ablated", "share removed"],
                  [[n, sizes[n], float(final_scores[n]["induction_score"].max()),
                    float(final_scores[n]["previous_token"].max()), float(final_scores[n]["copying"].max()),
                    curves[n]["icl_score"][-1],
                    next(r.value for r in rows if r.model == n and r.step == cfg.train.steps
                         and r.metric == "icl_score" and r.label == "random-tokens"),
                    transitions[n] if transitions[n] is not None else "none",
                    ablations[n][2], ablations[n][1], ablations[n][3]] for n in final_scores],
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


def run_pretrained(cfg: InductionHeadsConfig, run: Run, model_name: str) -> Report:
    """Score every head of a pretrained causal LM on repeated random tokens."""
    model, tokenizer = load_model(model_name)
    vocab = model.get_output_embeddings().weight.shape[0]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    allowed = np.array([t for t in range(vocab) if t not in special])
    half = cfg.probe.half or 50
    rng = np.random.default_rng([cfg.seed, 1])
    prompts = allowed[repeated_prompts(rng, cfg.probe.n_prompts, half, 0, len(allowed)).tokens]
    controls = allowed[rng.integers(0, len(allowed), size=(cfg.probe.n_prompts, 2 * half))]
    with torch.no_grad():
        res = measure(model, prompts, controls, cfg, half)
        abl, heads = ablate(model, prompts, res.arrays["induction_score"], cfg, half)
    rows = res.tagged(model=model_name).rows + abl.tagged(model=model_name).rows
    run.save_rows(rows)
    heat = run.save_figure(figs.score_heatmaps({model_name: res.arrays["induction_score"]}, "induction_score"),
                           "induction_heatmap")
    prev = run.save_figure(figs.score_heatmaps({model_name: res.arrays["previous_token"]}, "previous_token"),
                           "previous_token_heatmap")
    bars = run.save_figure(figs.ablation_bars({model_name: (abl.value("icl_score_intact"), abl.value(
        "icl_score_ablated"), f"{len(heads)} heads")}), "ablation")
    table = Table(["layer", "head", "induction", "prefix matching", "previous token", "copying"],
                  [[l, h, *(float(res.arrays[m][l, h]) for m in ("induction_score", "prefix_matching",
                                                                 "previous_token", "copying"))]
                   for l, h in top_heads(res.arrays["induction_score"], 10)],
                  caption="The ten heads with the highest induction score.")
    return Report(
        title=f"Induction heads of {model_name}",
        summary=f"Every head of {model_name} scored on {cfg.probe.n_prompts} prompts of {half} random tokens "
                f"written twice; ICL score {res.value('icl_score', label=None):.3f} nats "
                f"(loss at token {half + half // 2} − loss at token {half // 2}).",
        sections=[Section("Top heads", tables=[table]),
                  Section("Heads", figures=[Figure(heat, "Induction score per head."),
                                            Figure(prev, "Previous-token score per head.")]),
                  Section("Ablation", f"Ablated heads: {head_names(heads)}.",
                          figures=[Figure(bars, "ICL score intact and with those heads ablated.")])])


def run_study(cfg: InductionHeadsConfig, run: Run, model_name: str | None = None) -> Report:
    if model_name:
        return run_pretrained(cfg, run, model_name)
    return run_trained(cfg, run)
