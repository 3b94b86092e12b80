"""Training cost of iclab's trainer against the Hugging Face ``Trainer`` on every study's model,
per CPU second, and as a fraction of this machine's fp32 matmul peak measured in the same run.

    CPU ms/step     = CPU seconds of the process (all threads) from step ``warmup`` to the last
                      step, over those steps: the work done, which other jobs on a shared
                      machine barely disturb
    FLOPs per token = 6 * N + 6 * n_layers * seq * d_model per backbone token
                      (N = non-embedding parameters; Kaplan et al. 2020, training = 3 x forward;
                       the second term is the attention scores and their weighted sum)
    % of peak, CPU  = FLOPs per CPU second of training / FLOPs per CPU second of the best matmul

The models are the studies' own, built from ``src/iclab/configs/<study>/<preset>.yaml`` as the
study builds them (``study_models.largest``; ``--width`` overrides d_model), from the same seed
for every run. Every run sees the same batches: the batch of step ``s`` is
``batch_at(world, 0, s, B)``, which ``iclab.train.loop.train`` draws itself and which the
Trainer reads from an ``IterableDataset`` yielding the rows of those batches in order (labels =
input_ids with the world's loss mask as -100, the model shifts them; a vector model's
``(xs, ys)`` go to a wrapper whose forward returns its loss). Runs:

- ``iclab``: ``iclab.train.loop.train``, no probes, no checkpoints.
- ``hf``: ``transformers.Trainer`` given iclab's optimizer (AdamW, decay on matrices only) and
  iclab's schedule (``get_lr`` as a ``LambdaLR``): the same maths, so the losses must agree, and
  the ratio measures the trainers alone.
- ``hf-native`` (skip with ``--no-native``): the Trainer with its own optimizer (its default,
  ``adamw_torch_fused``) and ``cosine_with_min_lr`` schedule at the same hyper-parameters: what
  a user gets out of the box.
- with ``--compile``: ``iclab-compile`` (``train.compile: true``) and ``hf-compile`` (hf-native
  with ``torch_compile=True``). Compilation happens in the first steps, outside the timing.

Each step is stamped at its optimizer step (a global hook, outside any compiled graph); the
timed steps run from step ``warmup`` to the last step, so start-up, compilation and the first
steps are left out of every trainer alike. Runs alternate (iclab, hf, hf-native, iclab, ...);
each figure is the median over repeats, and a ratio the median of per-repeat ratios
(this / iclab > 1: the contender spends more CPU per step than iclab).

Run: ``.venv/bin/python benchmarks/bench_trainer.py [--studies ...] [--width 256] [--compile] [--steps 300] [--repeats 3]``"""

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

from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from study_models import TRAINING_STUDIES, flops_per_token, largest, model_seq

from iclab.config import TrainConfig
from iclab.train.batches import host_tensors, tokens_in
from iclab.train.prefetch import batch_at
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


# ---------------------------------------------------------------- the models

@dataclass
class Setup:
    """A study's largest model (``study_models.largest``) at a preset, ready to time: ``make_model``
    builds it afresh (same seed), ``seq`` is the length the backbone reads (two tokens a point for
    a vector model)."""

    name: str
    make_model: object
    world: object
    tcfg: TrainConfig
    seq: int
    vector: bool
    layers: int
    d_model: int
    flops_per_token: int


def setup(study: str, preset: str, width: int | None) -> Setup:
    if width is not None and study == "icg-generalization":
        raise SystemExit("--width: icg-generalization's model is a named size (model.size), not a d_model")
    trainee, model = largest(study, preset, {"model.d_model": width} if width else {})
    batch = batch_at(trainee.world, 0, 0, 1)
    seq = model_seq(batch)
    cfg = getattr(model, "backbone", model).config
    return Setup(f"{study} {preset}" + (f", width {width}" if width else ""), trainee.build, trainee.world,
                 trainee.train, seq, hasattr(model, "backbone"), cfg.num_hidden_layers, cfg.hidden_size,
                 int(flops_per_token(model, seq)[0]))


# ---------------------------------------------------------------- the trainers

@dataclass
class Run:
    """One training run: the start time of every step, the loss of every step."""

    trainer: str
    stamps: list[float] = field(default_factory=list)  # perf_counter at the start of each optimizer step
    cpu_stamps: list[float] = field(default_factory=list)  # process_time (all threads) at the same moments
    losses: list[float] = field(default_factory=list)
    first_last_inputs: list[torch.Tensor] = field(default_factory=list)
    threads_seen: int = 0
    wall_s: float = 0.0  # the whole train() call, start-up (and compilation) included
    optimizer: str = "AdamW (iclab make_optimizer)"

    def median_step_s(self, warmup: int) -> float:
        return float(np.median(np.diff(self.stamps[warmup:])))

    def cpu_s_per_step(self, warmup: int) -> float:
        """CPU seconds of this process per timed step: work done, whatever other processes do."""
        return (self.cpu_stamps[-1] - self.cpu_stamps[warmup]) / (len(self.cpu_stamps) - 1 - warmup)


def stamp_steps(model: torch.nn.Module, run: Run, steps: int, inputs: bool):
    """Stamp each step at its optimizer step (a global hook: it sees the Trainer's AdamW too, and it
    stays outside a compiled graph); with ``inputs``, a forward pre-hook keeps the first and last
    step's inputs (not on compiled runs, where a hook would be traced)."""
    def on_step(opt, args, kwargs):
        run.stamps.append(time.perf_counter())
        run.cpu_stamps.append(time.process_time())
        run.threads_seen = torch.get_num_threads()

    def on_forward(module, args, kwargs):
        if len(run.stamps) in (0, steps - 1) and module.training:
            x = kwargs.get("input_ids", kwargs.get("xs", args[0] if args else None))
            run.first_last_inputs.append(x.detach().clone())
    handles = [register_optimizer_step_pre_hook(on_step)]
    if inputs:
        handles.append(model.register_forward_pre_hook(on_forward, with_kwargs=True))
    return handles


def run_iclab(st: Setup, tcfg: TrainConfig, compiled: bool = False) -> Run:
    model = st.make_model()
    run = Run("iclab-compile" if compiled else "iclab")
    handles = stamp_steps(model, run, tcfg.steps, inputs=not compiled)
    t0 = time.perf_counter()
    result = train(model, st.world, tcfg.model_copy(update={"compile": compiled}), data_seed=0, ckpt_dir=None,
                   probe=None)
    run.wall_s = time.perf_counter() - t0
    for h in handles:
        h.remove()
    run.losses = result.losses
    return run


class StepBatches(IterableDataset):
    """The rows of ``batch_at(world, 0, s, B)`` for s = 0, 1, ..., in order: a DataLoader with batch
    size B rebuilds exactly those batches. Token worlds give ``input_ids`` and ``labels`` (the
    model shifts them; a position the world's ``loss_mask`` leaves out is -100, which is iclab's
    masked mean); vector worlds give ``xs`` and ``ys``."""

    def __init__(self, world, steps: int, batch_size: int):
        self.world, self.steps, self.batch_size = world, steps, batch_size

    def __iter__(self):
        for step in range(self.steps):
            batch = host_tensors(batch_at(self.world, 0, step, self.batch_size))
            if "xs" in batch:
                for x, y in zip(batch["xs"], batch["ys"]):
                    yield {"xs": x, "ys": y}
                continue
            tokens = batch["tokens"]  # (B, T)
            labels = tokens.masked_fill(~batch["loss_mask"], -100) if "loss_mask" in batch else tokens
            for row, lab in zip(tokens, labels):  # (T,)
                yield {"input_ids": row, "labels": lab}


class VectorLoss(nn.Module):
    """A vector model as the Trainer wants it: ``forward(xs, ys)`` returns ``{"loss": ...}``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, xs, ys):
        return {"loss": self.model.loss(xs, ys)}


def run_hf(st: Setup, tcfg: TrainConfig, native: bool, compiled: bool = False) -> Run:
    model = st.make_model()
    run = Run("hf-compile" if compiled else "hf-native" if native else "hf")
    common = dict(max_steps=tcfg.steps, per_device_train_batch_size=tcfg.batch_size, max_grad_norm=tcfg.grad_clip,
                  use_cpu=True, seed=0, eval_strategy="no", save_strategy="no", logging_strategy="no",
                  report_to=[], disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
                  torch_compile=compiled)
    if native:  # the Trainer's own optimizer (default ``optim``) and schedule, same hyper-parameters
        optimizers = (None, None)
        hyper = dict(learning_rate=tcfg.lr, weight_decay=tcfg.weight_decay, adam_beta1=tcfg.betas[0],
                     adam_beta2=tcfg.betas[1], adam_epsilon=1e-8, warmup_steps=tcfg.warmup,
                     lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": tcfg.min_lr_ratio})
    else:  # iclab's optimizer and schedule: identical maths
        opt = make_optimizer(model, tcfg)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: get_lr(s, tcfg.lr, tcfg.warmup, tcfg.steps, tcfg.min_lr_ratio, tcfg.decay_steps) / tcfg.lr)
        optimizers, hyper = (opt, sched), {}
    losses: list[torch.Tensor] = []
    trained = VectorLoss(model) if st.vector else model
    h_loss = None if compiled else trained.register_forward_hook(  # a hook in a compiled graph would be traced
        lambda m, a, out: losses.append((out["loss"] if isinstance(out, dict) else out.loss).detach()))
    handles = stamp_steps(model, run, tcfg.steps, inputs=not compiled)
    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(output_dir=out_dir, **common, **hyper)
        trainer = Trainer(model=trained, args=args, optimizers=optimizers,
                          train_dataset=StepBatches(st.world, tcfg.steps, tcfg.batch_size))
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics even with logging off
        t0 = time.perf_counter()
        trainer.train()
        run.wall_s = time.perf_counter() - t0
    for h in handles:
        h.remove()
    if h_loss is not None:
        h_loss.remove()
    run.losses = torch.stack(losses).tolist() if losses else []
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    run.optimizer = f"{type(opt).__name__} (fused={opt.defaults.get('fused')}, foreach={opt.defaults.get('foreach')})"
    return run


# ---------------------------------------------------------------- main

LABELS = {"iclab": "iclab `train`", "hf": "HF `Trainer`, iclab's AdamW + schedule",
          "hf-native": "HF `Trainer`, its own fused AdamW + cosine",
          "iclab-compile": "iclab `train`, `train.compile: true`",
          "hf-compile": "HF `Trainer`, its own, `torch_compile=True`"}


def bench_setup(st: Setup, args, trainers: list[str]) -> dict:
    """Every trainer on ``st``, alternating, ``args.repeats`` times; the summary of each."""
    tcfg = st.tcfg.model_copy(update={"steps": args.steps, "eval_every": args.steps + 1, "ckpt_every": args.steps + 1,
                                      "device": "cpu", "precision": "fp32", "log_every": args.steps})
    B = tcfg.batch_size
    tokens = tokens_in(batch_at(st.world, 0, 0, B))  # per step (tokens, or points of a vector world)
    runs: dict[str, list[Run]] = {name: [] for name in trainers}
    for r in range(args.repeats):
        for name in trainers:
            if name.startswith("iclab"):
                run = run_iclab(st, tcfg, compiled=name == "iclab-compile")
            else:
                run = run_hf(st, tcfg, native=name != "hf", compiled=name == "hf-compile")
            assert len(run.stamps) == args.steps, (name, len(run.stamps))
            runs[name].append(run)
            print(f"{st.name}  repeat {r + 1}/{args.repeats}  {name:<13} median step "
                  f"{1e3 * run.median_step_s(args.warmup):.2f} ms, {1e3 * run.cpu_s_per_step(args.warmup):.2f} CPU "
                  f"ms/step, whole run {run.wall_s:.1f} s, load {os.getloadavg()[0]:.2f}"
                  + (f", final loss {run.losses[-1]:.4f}" if run.losses else ""), flush=True)
    ref = runs["iclab"][0]
    checked = [run for rs in runs.values() for run in rs if run.first_last_inputs]
    same_batches = all(len(run.first_last_inputs) == 2 and all(torch.equal(a, b) for a, b in
                       zip(run.first_last_inputs, ref.first_last_inputs)) for run in checked)
    summary = {}
    for name, rs in runs.items():
        med_step = statistics.median(run.median_step_s(args.warmup) for run in rs)
        cpu = [run.cpu_s_per_step(args.warmup) for run in rs]
        losses = [np.array(run.losses) for run in rs if run.losses]
        summary[name] = {
            "tokens_per_s": tokens / med_step, "ms_per_step": 1e3 * med_step,
            "cpu_ms_per_step": 1e3 * statistics.median(cpu), "cpu_ms_per_step_all": [1e3 * c for c in cpu],
            "tokens_per_cpu_s": tokens / statistics.median(cpu),
            "wall_s_all": [run.wall_s for run in rs], "threads_seen": rs[0].threads_seen,
            "optimizer": rs[0].optimizer,
            "final_loss": float(losses[0][-1]) if losses else None,
            "max_abs_loss_diff_vs_iclab": (float(np.max(np.abs(losses[0] - np.array(ref.losses))))
                                           if losses else None),
        }
    for name in trainers:  # > 1: the contender spends more CPU per step than iclab
        ratios = [b / a for a, b in zip(summary["iclab"]["cpu_ms_per_step_all"], summary[name]["cpu_ms_per_step_all"])]
        summary[name]["cpu_ratio_this_over_iclab"] = statistics.median(ratios)
        summary[name]["cpu_ratio_this_over_iclab_all"] = ratios
    return {"setup": st.name, "batch": B, "tokens_per_step": tokens, "seq": st.seq,
            "backbone_tokens_per_step": tokens * (2 if st.vector else 1),  # a vector model reads x and y
            "layers": st.layers, "d_model": st.d_model, "flops_per_token": st.flops_per_token,
            "same_batches": same_batches, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", nargs="+", default=list(TRAINING_STUDIES), choices=TRAINING_STUDIES,
                    metavar="STUDY", help="studies whose models are trained (default: every study that trains)")
    ap.add_argument("--preset", default="cpu", help="the studies' preset (default cpu)")
    ap.add_argument("--width", type=int, default=None, help="override every model's d_model (e.g. 256)")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps per run (default 300)")
    ap.add_argument("--warmup", type=int, default=20, help="first steps left out of the timing (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats of every trainer (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads, for the peak too (default 1)")
    ap.add_argument("--no-native", action="store_true", help="skip the Trainer with its own optimizer")
    ap.add_argument("--compile", action="store_true", help="also iclab with train.compile and the Trainer with "
                    "torch_compile=True (each run compiles first, outside the timed steps)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/trainer.json"))
    args = ap.parse_args()
    if args.steps < args.warmup + 3:
        ap.error(f"--steps ({args.steps}) must be at least --warmup ({args.warmup}) + 3")

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    trainers = ["iclab", "hf"] + ([] if args.no_native else ["hf-native"])
    trainers += ["iclab-compile", "hf-compile"] if args.compile else []
    peak_before = matmul_peak()
    results = [bench_setup(setup(study, args.preset, args.width), args, trainers) for study in args.studies]
    peak_after = matmul_peak()
    peak_cpu = max(peak_before["peak_per_cpu_s"], peak_after["peak_per_cpu_s"])

    print(f"\nfp32 matmul peak per CPU second ({args.threads} thread(s)): {peak_cpu:.1f} GFLOP/s; "
          f"{args.steps - 1 - args.warmup} timed steps a run, {args.repeats} repeats")
    print("\n| model | batch × seq | FLOPs/token | trainer | CPU ms/step | CPU ratio this / iclab "
          "| % of peak, CPU time | final loss |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        for i, name in enumerate(trainers):
            s = res["summary"][name]
            s["fraction_of_peak_cpu"] = res["backbone_tokens_per_step"] * res["flops_per_token"] / 1e9 / (
                s["cpu_ms_per_step"] / 1e3) / peak_cpu
            head = (f"| {res['setup']} ({res['layers']} layers, width {res['d_model']}) | "
                    f"{res['batch']} × {res['seq']} | {res['flops_per_token']:,} |") if i == 0 else "| | | |"
            loss = f"{s['final_loss']:.4f}" if s["final_loss"] is not None else "–"
            print(f"{head} {LABELS[name]} | {s['cpu_ms_per_step']:.1f} | {s['cpu_ratio_this_over_iclab']:.2f} "
                  f"| {100 * s['fraction_of_peak_cpu']:.1f}% | {loss} |")
    for res in results:
        diffs = {n: res["summary"][n]["max_abs_loss_diff_vs_iclab"] for n in trainers}
        print(f"{res['setup']}: same batches in every run: {res['same_batches']}; max |loss - iclab loss|: "
              + ", ".join(f"{n} {d:.1e}" for n, d in diffs.items() if d is not None))

    out = {
        "date": str(dt.date.today()), "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__},
        "peak_gflops_per_cpu_s": peak_cpu, "peak_before": peak_before, "peak_after": peak_after,
        "load_average": os.getloadavg(), "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
