"""Training throughput of iclab's trainer against the Hugging Face ``Trainer``, and both as a
fraction of this machine's fp32 matmul peak measured in the same run.

    tokens/s        = timed steps * batch * seq_len / timed seconds
    FLOPs per token = 6 * N + 6 * n_layers * seq_len * d_model
                      (N = non-embedding parameters; Kaplan et al. 2020, training = 3 x forward;
                       the second term is the attention scores and their weighted sum)
    fraction        = tokens/s * FLOPs per token / peak FLOP/s

The model is the one of ``src/iclab/configs/induction-heads/<preset>.yaml`` at its largest depth
(2-layer attention-only llama, d_model 128, 4 heads, vocabulary 64, seq 32, batch 32), built
from the same seed for every run. Every run sees the same batches: the batch of step ``s`` is
``batch_at(world, seed, s, B)``, which ``iclab.train.loop.train`` draws itself and which the
Trainer reads from an ``IterableDataset`` yielding the rows of those batches in order
(labels = input_ids; the model shifts them). Runs:

- ``iclab``: ``iclab.train.loop.train``, no probes, no checkpoints.
- ``hf``: ``transformers.Trainer`` given iclab's optimizer (AdamW, decay on matrices only) and
  iclab's schedule (``get_lr`` as a ``LambdaLR``): the same maths, so the losses must agree, and
  the ratio measures the trainers alone.
- ``hf-native`` (skip with ``--no-native``): the Trainer with its own optimizer (its default,
  ``adamw_torch_fused``) and ``cosine_with_min_lr`` schedule at the same hyper-parameters: what
  a user gets out of the box.

Each step's start is stamped by a forward pre-hook on the model; the timed steps run from
step ``warmup`` to the last step, so start-up, the first steps and the end of training are
left out in both trainers alike. A run's tokens/s is ``B * T`` over its median step time (the
CPU is shared, and a median ignores bursts of other load); the mean over the whole timed
window is reported beside it ("elapsed"). Runs alternate (iclab, hf, hf-native, iclab, ...);
the summary is the median over repeats, and the ratio the median of per-repeat ratios. The
peak is the best GFLOP/s of square fp32 matmuls (before and after the runs, best of both) at
the same thread count.

Run: ``.venv/bin/python benchmarks/bench_trainer.py [--steps 300] [--warmup 20] [--repeats 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")  # silent like the Trainer with tqdm off

import numpy as np
import torch
import transformers
from torch.utils.data import IterableDataset
from transformers import PrinterCallback, Trainer, TrainingArguments

from iclab.config import TrainConfig, load_config
from iclab.models.build import build_model, n_params
from iclab.studies.induction_heads import InductionHeadsConfig
from iclab.train.batches import batch_at
from iclab.train.loop import make_optimizer, train
from iclab.train.schedule import get_lr


# ---------------------------------------------------------------- matmul peak

def matmul_gflops(m: int, k: int, n: int, trials: int = 7, min_trial_s: float = 0.05) -> tuple[float, float]:
    """Best GFLOP/s of ``(m, k) @ (k, n)`` fp32 over ``trials`` timed trials of repeated calls: per
    wall-clock second, and per CPU second of this process (which other processes do not dilute)."""
    a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    torch.mm(a, b, out=c)  # warm-up
    t0 = time.perf_counter()
    torch.mm(a, b, out=c)
    reps = max(1, int(min_trial_s / max(time.perf_counter() - t0, 1e-7)))
    best_wall = best_cpu = float("inf")
    for _ in range(trials):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        best_wall = min(best_wall, (time.perf_counter() - t0) / reps)
        best_cpu = min(best_cpu, (time.process_time() - c0) / reps)
    flop = 2 * m * k * n
    return flop / best_wall / 1e9, flop / max(best_cpu, 1e-9) / 1e9


def matmul_peak(sizes=(256, 512, 1024, 2048)) -> dict:
    """GFLOP/s of square fp32 matmuls by size; ``peak`` is the best of them per wall-clock second,
    ``peak_per_cpu_s`` the best per CPU second."""
    by_size = {str(s): matmul_gflops(s, s, s) for s in sizes}
    return {"by_size": by_size, "peak": max(w for w, _ in by_size.values()),
            "peak_per_cpu_s": max(c for _, c in by_size.values())}


# ---------------------------------------------------------------- the trainers

@dataclass
class Run:
    """One training run: the start time of every step, the loss of every step."""

    trainer: str
    stamps: list[float] = field(default_factory=list)  # perf_counter at the start of each forward
    cpu_stamps: list[float] = field(default_factory=list)  # process_time (all threads) at the same moments
    losses: list[float] = field(default_factory=list)
    first_last_inputs: list[torch.Tensor] = field(default_factory=list)
    threads_seen: int = 0
    wall_s: float = 0.0  # the whole train() call, start-up included
    optimizer: str = "AdamW (iclab make_optimizer)"

    def timed(self, warmup: int) -> tuple[int, float]:
        """(steps, seconds) from the start of step ``warmup`` to the start of the last step."""
        return len(self.stamps) - 1 - warmup, self.stamps[-1] - self.stamps[warmup]

    def median_step_s(self, warmup: int) -> float:
        return float(np.median(np.diff(self.stamps[warmup:])))

    def cpu_s_per_step(self, warmup: int) -> float:
        """CPU seconds of this process per timed step: work done, whatever other processes do."""
        return (self.cpu_stamps[-1] - self.cpu_stamps[warmup]) / (len(self.cpu_stamps) - 1 - warmup)


def stamp_steps(model: torch.nn.Module, run: Run, steps: int):
    """A forward pre-hook that stamps each step and keeps the inputs of the first and last step."""
    def hook(module, args, kwargs):
        run.stamps.append(time.perf_counter())
        run.cpu_stamps.append(time.process_time())
        if len(run.stamps) in (1, steps):
            run.first_last_inputs.append(kwargs["input_ids"].detach().clone())
            run.threads_seen = torch.get_num_threads()
    return model.register_forward_pre_hook(hook, with_kwargs=True)


def run_iclab(cfg: InductionHeadsConfig, tcfg: TrainConfig, depth: int) -> Run:
    model = build_model(cfg.model.model_copy(update={"n_layers": depth}), cfg.world.vocab_size, seed=cfg.seed + depth)
    run = Run("iclab")
    handle = stamp_steps(model, run, tcfg.steps)
    t0 = time.perf_counter()
    result = train(model, cfg.world, tcfg, data_seed=cfg.seed, ckpt_dir=None, probe=None)
    run.wall_s = time.perf_counter() - t0
    handle.remove()
    run.losses = result.losses
    return run


class StepBatches(IterableDataset):
    """The rows of ``batch_at(world, seed, s, B)`` for s = 0, 1, ..., in order, as
    ``{"input_ids", "labels"}``: a DataLoader with batch size B rebuilds exactly those batches."""

    def __init__(self, world, seed: int, steps: int, batch_size: int):
        self.world, self.seed, self.steps, self.batch_size = world, seed, steps, batch_size

    def __iter__(self):
        for step in range(self.steps):
            tokens = torch.from_numpy(batch_at(self.world, self.seed, step, self.batch_size).tokens)  # (B, T)
            for row in tokens:  # (T,)
                yield {"input_ids": row, "labels": row}


def run_hf(cfg: InductionHeadsConfig, tcfg: TrainConfig, depth: int, native: bool) -> Run:
    model = build_model(cfg.model.model_copy(update={"n_layers": depth}), cfg.world.vocab_size, seed=cfg.seed + depth)
    run = Run("hf-native" if native else "hf")
    common = dict(max_steps=tcfg.steps, per_device_train_batch_size=tcfg.batch_size, max_grad_norm=tcfg.grad_clip,
                  use_cpu=True, seed=cfg.seed, eval_strategy="no", save_strategy="no", logging_strategy="no",
                  report_to=[], disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False)
    if native:  # the Trainer's own optimizer (default ``optim``) and schedule, same hyper-parameters
        optimizers = (None, None)
        hyper = dict(learning_rate=tcfg.lr, weight_decay=tcfg.weight_decay, adam_beta1=tcfg.betas[0],
                     adam_beta2=tcfg.betas[1], adam_epsilon=1e-8, warmup_steps=tcfg.warmup,
                     lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": tcfg.min_lr_ratio})
    else:  # iclab's optimizer and schedule: identical maths
        opt = make_optimizer(model, tcfg)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: get_lr(s, tcfg.lr, tcfg.warmup, tcfg.steps, tcfg.min_lr_ratio) / tcfg.lr)
        optimizers, hyper = (opt, sched), {}
    losses: list[torch.Tensor] = []
    h_loss = model.register_forward_hook(lambda m, a, out: losses.append(out.loss.detach()))
    handle = stamp_steps(model, run, tcfg.steps)
    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(output_dir=out_dir, **common, **hyper)
        trainer = Trainer(model=model, args=args, optimizers=optimizers,
                          train_dataset=StepBatches(cfg.world, cfg.seed, tcfg.steps, tcfg.batch_size))
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics even with logging off
        t0 = time.perf_counter()
        trainer.train()
        run.wall_s = time.perf_counter() - t0
    handle.remove()
    h_loss.remove()
    run.losses = torch.stack(losses).tolist()
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    run.optimizer = f"{type(opt).__name__} (fused={opt.defaults.get('fused')}, foreach={opt.defaults.get('foreach')})"
    return run


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps per run (default 300)")
    ap.add_argument("--warmup", type=int, default=20, help="first steps left out of the timing (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats of every trainer (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads, for the peak too (default 1)")
    ap.add_argument("--preset", default="cpu", help="induction-heads preset (default cpu)")
    ap.add_argument("--no-native", action="store_true", help="skip the Trainer with its own optimizer")
    ap.add_argument("--out", type=Path, default=Path("bench_out/trainer.json"))
    args = ap.parse_args()
    if args.steps < args.warmup + 3:
        ap.error(f"--steps ({args.steps}) must be at least --warmup ({args.warmup}) + 3")

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    cfg = load_config(InductionHeadsConfig, "induction-heads", args.preset)
    depth = max(cfg.layers)
    tcfg = cfg.train.model_copy(update={"steps": args.steps, "eval_every": args.steps + 1,
                                        "ckpt_every": args.steps + 1, "device": "cpu", "precision": "fp32"})
    B, T = tcfg.batch_size, cfg.world.seq_len
    model = build_model(cfg.model.model_copy(update={"n_layers": depth}), cfg.world.vocab_size, seed=cfg.seed + depth)
    n_ne = n_params(model, non_embedding=True)
    flops_per_token = 6 * n_ne + 6 * depth * T * cfg.model.d_model
    unembed_flops = 6 * cfg.model.d_model * cfg.world.vocab_size  # not in the formula; reported beside it
    t0 = time.perf_counter()
    for s in range(200):
        batch_at(cfg.world, cfg.seed, s, B)
    batch_us = (time.perf_counter() - t0) / 200 * 1e6

    shape = (B * T, cfg.model.d_model, cfg.model.d_model)  # a projection of this model: (B*T, C) @ (C, C)
    peak_before, shape_before = matmul_peak(), matmul_gflops(*shape)
    trainers = ["iclab", "hf"] + ([] if args.no_native else ["hf-native"])
    runs: dict[str, list[Run]] = {name: [] for name in trainers}
    for r in range(args.repeats):
        for name in trainers:
            if name == "iclab":
                run = run_iclab(cfg, tcfg, depth)
            else:
                run = run_hf(cfg, tcfg, depth, native=name == "hf-native")
            assert len(run.stamps) == args.steps, (name, len(run.stamps))
            steps, secs = run.timed(args.warmup)
            runs[name].append(run)
            print(f"repeat {r + 1}/{args.repeats}  {name:<9} median step {1e3 * run.median_step_s(args.warmup):.2f} ms"
                  f"  ({steps * B * T / secs:,.0f} tok/s elapsed, {1e3 * run.cpu_s_per_step(args.warmup):.2f} CPU ms"
                  f"/step)  load {os.getloadavg()[0]:.2f}  final loss {run.losses[-1]:.4f}",
                  flush=True)
    peak_after, shape_after = matmul_peak(), matmul_gflops(*shape)
    peak = max(peak_before["peak"], peak_after["peak"])
    peak_cpu = max(peak_before["peak_per_cpu_s"], peak_after["peak_per_cpu_s"])
    shape_gflops = max(shape_before[0], shape_after[0])

    ref = runs["iclab"][0]
    same_batches = all(torch.equal(a, b) for rs in runs.values() for run in rs
                       for a, b in zip(run.first_last_inputs, ref.first_last_inputs))
    summary = {}
    for name, rs in runs.items():
        tok_s = [B * T / run.median_step_s(args.warmup) for run in rs]  # robust to bursts of other load
        tok_s_elapsed = [s * B * T / secs for s, secs in (run.timed(args.warmup) for run in rs)]
        med = statistics.median(tok_s)
        summary[name] = {
            "tokens_per_s": med, "tokens_per_s_all": tok_s,
            "tokens_per_s_elapsed": statistics.median(tok_s_elapsed), "tokens_per_s_elapsed_all": tok_s_elapsed,
            "ms_per_step": 1e3 * B * T / med, "wall_s_all": [run.wall_s for run in rs],
            "cpu_ms_per_step": 1e3 * statistics.median(run.cpu_s_per_step(args.warmup) for run in rs),
            "cpu_ms_per_step_all": [1e3 * run.cpu_s_per_step(args.warmup) for run in rs],
            "gflops": med * flops_per_token / 1e9, "fraction_of_peak": med * flops_per_token / 1e9 / peak,
            # FLOPs per CPU second of training against FLOPs per CPU second of the best matmul: how well
            # the CPU time is used, whatever share of the cores other processes took
            "fraction_of_peak_cpu": B * T * flops_per_token / 1e9 / statistics.median(
                run.cpu_s_per_step(args.warmup) for run in rs) / peak_cpu,
            "final_loss": rs[0].losses[-1], "mean_loss_last_50": float(np.mean(rs[0].losses[-50:])),
            "threads_seen": rs[0].threads_seen, "optimizer": rs[0].optimizer,
            "max_abs_loss_diff_vs_iclab": float(np.max(np.abs(np.array(rs[0].losses) - np.array(ref.losses)))),
        }
    for name in trainers[1:]:
        for key in ("", "_elapsed"):
            ratios = [a / b for a, b in zip(summary["iclab"][f"tokens_per_s{key}_all"],
                                            summary[name][f"tokens_per_s{key}_all"])]
            summary[name][f"ratio_iclab_over_this{key}"] = statistics.median(ratios)
            summary[name][f"ratio_iclab_over_this{key}_all"] = ratios
        ratios = [b / a for a, b in zip(summary["iclab"]["cpu_ms_per_step_all"], summary[name]["cpu_ms_per_step_all"])]
        summary[name]["cpu_ratio_this_over_iclab"] = statistics.median(ratios)

    timed_steps = args.steps - 1 - args.warmup
    print(f"\nmodel: {depth}-layer attention-only {cfg.model.family}, d_model {cfg.model.d_model}, "
          f"{cfg.model.n_heads} heads, vocab {cfg.world.vocab_size}, seq {T}, batch {B}; "
          f"non-embedding params {n_ne:,}; FLOPs/token = 6*{n_ne:,} + 6*{depth}*{T}*{cfg.model.d_model} "
          f"= {flops_per_token:,}")
    print(f"fp32 matmul peak ({args.threads} thread(s)): {peak:.1f} GFLOP/s "
          f"(before {peak_before['peak']:.1f}, after {peak_after['peak']:.1f}); per CPU second {peak_cpu:.1f}; "
          f"({B * T}x{cfg.model.d_model})@({cfg.model.d_model}x{cfg.model.d_model}): {shape_gflops:.1f} GFLOP/s")
    print(f"batch_at: {batch_us:.0f} us per batch; same batches in every run: {same_batches}")
    for name in trainers:
        s = summary[name]
        print(f"{name:<9} {s['tokens_per_s']:>7,.0f} tok/s (median step; {s['tokens_per_s_elapsed']:,.0f} elapsed), "
              f"{s['cpu_ms_per_step']:.2f} CPU ms/step  "
              f"final loss {s['final_loss']:.4f}  mean of last 50 {s['mean_loss_last_50']:.4f}  "
              f"max |loss - iclab loss| over steps {s['max_abs_loss_diff_vs_iclab']:.2e}  optimizer {s['optimizer']}")
    print("\n| date | threads | trainer | tok/s | iclab / this | CPU ms/step | CPU ratio this / iclab "
          "| peak GFLOP/s | % of peak | % of peak, CPU time | final loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    labels = {"iclab": "iclab `train`", "hf": "HF `Trainer`, iclab's AdamW + schedule",
              "hf-native": "HF `Trainer`, its own fused AdamW + cosine"}
    for name in trainers:
        s = summary[name]
        ratio = f"{s['ratio_iclab_over_this']:.2f}" if name != "iclab" else "1"
        cpu_ratio = f"{s['cpu_ratio_this_over_iclab']:.2f}" if name != "iclab" else "1"
        print(f"| {dt.date.today()} | {args.threads} | {labels[name]} | {s['tokens_per_s']:,.0f} | {ratio} "
              f"| {s['cpu_ms_per_step']:.1f} | {cpu_ratio} | {peak:.0f} | {100 * s['fraction_of_peak']:.1f}% "
              f"| {100 * s['fraction_of_peak_cpu']:.1f}% | {s['final_loss']:.4f} |")

    out = {
        "date": str(dt.date.today()), "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__},
        "model": {"layers": depth, "d_model": cfg.model.d_model, "heads": cfg.model.n_heads,
                  "vocab": cfg.world.vocab_size, "seq_len": T, "batch": B, "non_embedding_params": n_ne,
                  "params": n_params(model), "flops_per_token": flops_per_token,
                  "flops_formula": "6*N_non_embedding + 6*n_layers*seq_len*d_model",
                  "unembedding_flops_per_token_not_counted": unembed_flops},
        "peak_gflops": peak, "peak_gflops_per_cpu_s": peak_cpu, "peak_before": peak_before, "peak_after": peak_after,
        "model_shaped_matmul_gflops": shape_gflops, "batch_at_us": batch_us,
        "load_average": os.getloadavg(), "timed_steps": timed_steps, "same_batches": same_batches, "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
