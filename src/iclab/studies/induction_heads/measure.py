"""What the induction-heads study measures: head scores over training, then head ablation."""

from __future__ import annotations

import numpy as np
import torch

from iclab.models.build import build_model, n_params
from iclab.models.load import context_limits, load_model, save_trained
from iclab.probes.ablation import HeadAblation
from iclab.probes.icl_score import ICLScore
from iclab.probes.induction import InductionScores, top_heads
from iclab.probes.result import ProbeResult
from iclab.rows import Rows
from iclab.runs.run import Run
from iclab.studies.induction_heads.config import InductionHeadsConfig
from iclab.train.loop import train
from iclab.worlds.induction import RandomTokens, repeated_prompts


def head_scores(model, prompts, controls, cfg: InductionHeadsConfig, half: int) -> ProbeResult:
    """Every head's scores and the ICL score, on repeated prompts and on random-token controls."""
    icl = ICLScore(early=half // 2, late=half + half // 2, batch_size=cfg.probe.batch_size)
    out = InductionScores(batch_size=cfg.probe.batch_size)(model, prompts)
    out.extend(icl(model, prompts))
    control = icl(model, controls).tagged(label="random-tokens")
    out.rows += control.rows
    out.arrays["loss_by_pos_random"] = control.arrays["loss_by_pos"]
    return out


def ablate(model, prompts, scores: np.ndarray, cfg: InductionHeadsConfig, half: int
           ) -> tuple[ProbeResult, list[tuple[int, int]]]:
    """The ICL score with the induction heads (score >= ``probe.ablate_min_score``) ablated;
    with none above it, the one best head."""
    heads = top_heads(scores, cfg.probe.ablate_max_heads, cfg.probe.ablate_min_score) or top_heads(scores, 1)
    icl = ICLScore(early=half // 2, late=half + half // 2, batch_size=cfg.probe.batch_size)
    probe = HeadAblation(heads=heads, icl=icl, mode=cfg.probe.ablation, label="induction heads")
    return probe(model, prompts), heads


def describe(rows: Rows) -> str:
    """What a probe step found: the best head and the ICL score."""
    scores = rows.where(metric="induction_score")
    best = max(scores, key=lambda r: r.value)
    return (f"best induction score {best.value:.2f} (L{best.layer}H{best.head}), "
            f"ICL score {rows.where(probe='icl', label=None).value('icl_score'):+.2f} nats")


def measure(cfg: InductionHeadsConfig, run: Run, model_name: str | None = None) -> None:
    """Train one attention-only model per depth in ``cfg.layers`` (or load ``model_name``), score
    every head over training, and ablate the induction heads at the end."""
    if model_name:
        return measure_pretrained(cfg, run, model_name)
    half = cfg.half(pretrained=False)
    prompt_rng = np.random.default_rng([cfg.seed, 1])
    prompts = repeated_prompts(prompt_rng, cfg.probe.n_prompts, half, 0, cfg.world.vocab)
    controls = RandomTokens(vocab=cfg.world.vocab, seq_len=2 * half).sample(prompt_rng, cfg.probe.n_prompts)

    rows = Rows()
    for depth in cfg.layers:
        name = f"L{depth}"
        spec = cfg.model.model_copy(update={"n_layers": depth})
        model = build_model(spec, cfg.world.vocab_size, seed=cfg.seed + depth)

        def probe(m, step, name=name):
            return head_scores(m, prompts, controls, cfg, half).tagged(step=step, model=name).rows

        result = train(model, cfg.world, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir(name),
                       probe=probe, label=name, describe=describe, log=cfg.log, run_dir=run.path)
        rows += result.rows
        save_trained(model, run.path / "models" / name, cfg.world.seq_len)

        final = head_scores(model, prompts, controls, cfg, half)
        abl, heads = ablate(model, prompts, final.arrays["induction_score"], cfg, half)
        rows += abl.tagged(step=result.step, model=name).rows
        run.save_arrays(name, **final.arrays, **abl.arrays, heads=np.array(heads).reshape(-1, 2),
                        n_params=n_params(model))
    run.save_rows(rows)


def measure_pretrained(cfg: InductionHeadsConfig, run: Run, model_name: str) -> None:
    """Score every head of a pretrained causal LM on repeated random tokens, then ablate."""
    model, tokenizer = load_model(model_name, settings=cfg.model)
    vocab = model.get_output_embeddings().weight.shape[0]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    allowed = np.array([t for t in range(vocab) if t not in special])
    half = cfg.half(pretrained=True, limits=context_limits(model))
    rng = np.random.default_rng([cfg.seed, 1])
    prompts = allowed[repeated_prompts(rng, cfg.probe.n_prompts, half, 0, len(allowed)).tokens]
    controls = allowed[rng.integers(0, len(allowed), size=(cfg.probe.n_prompts, 2 * half))]
    with torch.no_grad():
        res = head_scores(model, prompts, controls, cfg, half)
        abl, heads = ablate(model, prompts, res.arrays["induction_score"], cfg, half)
    run.save_arrays("pretrained", **res.arrays, **abl.arrays, heads=np.array(heads).reshape(-1, 2), half=half,
                    trained_context=context_limits(model)[0] or 0)
    scores = res.rows.where(probe="induction").tagged(pos=2 * half)  # the prompt length these scores hold for
    others = Rows(r for r in res.rows if r.probe != "induction")
    run.save_rows((scores + others + abl.rows).tagged(model=model_name))
