"""Every training world's sampling rate against the trainer's consumption rate, at the batch
shapes of each study's presets. Target: every world samples at least 10x faster than
training consumes it.

Definitions (a "unit" is what ``iclab.train.batches.tokens_in`` counts: a token of a token
world, an (x, y) point of a vector world):

    sampling rate   = units of the batch / median seconds of ``batch_at(world, seed, step, B)``,
                      one thread (the trainer draws the next batch in one background thread)
    CPU consumption = units of the batch / median seconds of one training step on this CPU,
                      one thread: forward + loss (``loss_on_batch``), backward, gradient clip
                      (when ``train.grad_clip`` > 0), AdamW step (``make_optimizer``), fp32,
                      on the model the study builds, after one warm-up step
    GPU consumption = ESTIMATE, no GPU was used: 0.4 * 989e12 FLOP/s (40% of an H100's dense
                      bf16 peak) / FLOPs per unit, where
                      FLOPs per token = 6 * N + 6 * n_layers * seq * d_model
                      (N = non-embedding parameters, as in ``bench_trainer.py``; an LSTM has no
                      attention term; a VectorModel's read-in and read-out count in N) and a vector world's point is 2 tokens (``VectorModel``
                      interleaves x and y, so seq = 2 * points)
    ratio           = sampling rate / consumption rate; below 10 misses the target
    H100 step       = ESTIMATE, the preset's batch / GPU consumption: how long the sampler has
                      for a batch (a tenth of it for the target)

Rates are per CPU second of this process (``time.process_time``), which other processes on a
shared machine do not dilute; the wall-clock medians are reported beside them and in the JSON.
Both sides use one thread. A world with a curriculum (``at_step``) is measured at step 0 and
at the last training step, where its batches are largest. A study that trains several models
gives one row per model whose shape differs (induction-heads: its shallowest and deepest
depth; bayesian-icl: the transformer and the LSTM baseline; data-properties: one row per
burstiness, the worlds differ, the model is the same).

A step of a big model is slow on a CPU, so the training step is timed on at most
``--max-train-tokens`` model tokens (default 4,096): the preset's batch is cut to
``max(1, max_train_tokens // seq)`` sequences and the rate is taken per unit, as if it held
for the full batch (a CPU's rate changes little with batch size at these shapes; if anything
a smaller batch runs slower, which flatters the ratio). The table's "train B" column says
which batch was timed. Sampling is always timed at the preset's own batch.

label-semantics trains a model only when ``models`` is empty; it is measured at its cpu preset
with ``models: []`` (its own world, model and train sections). Its paper preset trains nothing.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_worlds.py
[--studies induction-heads,...] [--presets cpu,paper] [--min-seconds 0.5] [--train-steps 3]
[--max-train-tokens 4096]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")

import numpy as np
import torch
from torch import nn

from study_models import Trainee, flops_per_token, model_seq, trainees

from iclab.train.batches import host_tensors, loss_on_batch, tokens_in
from iclab.train.prefetch import batch_at
from iclab.train.loop import make_optimizer
from iclab.worlds.base import VectorBatch

H100_BF16_PEAK = 989e12  # dense FLOP/s
MFU = 0.4
TARGET = 10.0

#: (study, preset, overrides) measured by default: every study that trains, at cpu and paper, and
#: the cheap extra presets of the vector studies
PRESETS: dict[str, list[tuple[str, dict]]] = {
    "induction-heads": [("cpu", {}), ("paper", {})],
    "icg-generalization": [("cpu", {}), ("paper", {})],
    "graph-tracing": [("cpu", {}), ("paper", {})],
    "bayesian-icl": [("cpu", {}), ("paper", {})],
    "data-properties": [("cpu", {}), ("paper", {})],
    "label-semantics": [("cpu", {"models": []})],
    "task-vectors": [("cpu", {}), ("cpu-long", {}), ("paper", {})],
    "regression-icl": [("cpu", {}), ("sparse", {}), ("tree", {}), ("paper", {})],
}


@dataclass
class Row:
    study: str
    preset: str
    model: str
    step: int
    batch: int
    shape: str  # of one batch: (B, T) tokens or (B, points, dim)
    units: int  # tokens_in(batch)
    model_seq: int  # tokens per sequence the model sees
    sample_s: float  # median wall seconds per batch_at
    sample_cpu_s: float  # median CPU seconds per batch_at
    sample_rate: float  # units per CPU second
    train_batch: int  # sequences in the timed training step
    train_s: float  # median wall seconds per timed step
    train_cpu_s: float
    train_rate: float  # units per CPU second
    flops_per_unit: float
    non_embedding_params: int
    gpu_rate_estimate: float  # units per second, ESTIMATE
    ratio_cpu: float = field(init=False)
    ratio_gpu_estimate: float = field(init=False)
    gpu_step_s_estimate: float = field(init=False)  # of the preset's whole batch

    def __post_init__(self):
        self.ratio_cpu = self.sample_rate / self.train_rate
        self.ratio_gpu_estimate = self.sample_rate / self.gpu_rate_estimate
        self.gpu_step_s_estimate = self.units / self.gpu_rate_estimate


def steps_measured(trainee: Trainee) -> list[int]:
    """Step 0, and the last step when a curriculum grows the batches."""
    curriculum = getattr(trainee.world, "curriculum", None) is not None and hasattr(trainee.world, "at_step")
    return [0, trainee.train.steps - 1] if curriculum else [0]


# ---------------------------------------------------------------- timing

def time_calls(fn: Callable[[int], object], min_seconds: float, min_calls: int = 3, max_calls: int = 200
               ) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``fn(i)`` for i = 1, 2, ... after ``fn(0)`` as warm-up, over
    calls filling about ``min_seconds`` of wall-clock time."""
    fn(0)
    walls, cpus = [], []
    i = 1
    while i <= max_calls and (len(walls) < min_calls or sum(walls) < min_seconds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        i += 1
    return float(np.median(walls)), float(np.median(cpus))


def time_sampling(trainee: Trainee, step: int, min_seconds: float) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``batch_at`` at the preset's batch size, over consecutive steps
    of the same curriculum stage: from step 0 onward, from the last step backward."""
    direction = 1 if step == 0 else -1
    return time_calls(lambda i: batch_at(trainee.world, trainee.seed, step + direction * i, trainee.train.batch_size),
                      min_seconds)


def shape_of(batch) -> str:
    return "x".join(map(str, (batch.xs.shape if isinstance(batch, VectorBatch) else batch.tokens.shape)))


def train_step(model: nn.Module, opt: torch.optim.Optimizer, tensors: dict, grad_clip: float) -> None:
    """One step as ``iclab.train.loop.train`` takes it on a CPU (fp32, no autocast)."""
    opt.zero_grad(set_to_none=True)
    loss_on_batch(model, tensors).backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def time_training(trainee: Trainee, model: nn.Module, batch_size: int, step: int, steps: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a training step of ``model`` at ``batch_size`` on the batch of ``step``."""
    model.train()
    opt = make_optimizer(model, trainee.train)
    tensors = host_tensors(batch_at(trainee.world, trainee.seed, step, batch_size))
    walls, cpus = [], []
    for i in range(steps + 1):  # the first is a warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(model, opt, tensors, trainee.train.grad_clip)
        if i:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def measure(study: str, preset: str, overrides: dict, min_seconds: float, train_steps: int,
            max_train_tokens: int) -> list[Row]:
    rows = []
    for trainee in trainees(study, preset, overrides):
        B, seed = trainee.train.batch_size, trainee.seed
        for step in steps_measured(trainee):
            batch = batch_at(trainee.world, seed, step, B)
            units, seq = tokens_in(batch), model_seq(batch)
            s_wall, s_cpu = time_sampling(trainee, step, min_seconds)
            train_B = max(1, min(B, max_train_tokens // seq))
            model = trainee.build()
            fpt, n = flops_per_token(model, seq)
            t_wall, t_cpu = time_training(trainee, model, train_B, step, train_steps)
            train_units = units * train_B / B
            fpu = fpt * seq * B / units  # model tokens per unit: 1 for tokens, 2 for points
            rows.append(Row(study, preset, trainee.label, step, B, shape_of(batch), units, seq,
                            s_wall, s_cpu, units / max(s_cpu, 1e-9), train_B, t_wall, t_cpu,
                            train_units / max(t_cpu, 1e-9), fpu, n, MFU * H100_BF16_PEAK / fpu))
            print(f"  {study} {preset} {trainee.label} step {step}: sample {1e3 * s_cpu:.2f} CPU ms "
                  f"({units / s_cpu:,.0f}/s), train {t_cpu:.3f} CPU s at B={train_B} "
                  f"({train_units / t_cpu:,.0f}/s), load {os.getloadavg()[0]:.1f}", flush=True)
    return rows


# ---------------------------------------------------------------- report

def sig(x: float) -> str:
    """Three significant figures, thousands separated: 0.0123, 4.56, 789, 12,345."""
    digits = max(0, 2 - math.floor(math.log10(x))) if x > 0 else 0
    return f"{x:,.{digits}f}"


def rate(x: float) -> str:
    return f"{sig(x / 1e6)} M" if x >= 1e6 else f"{sig(x / 1e3)} k"


def ratio(x: float) -> str:
    return sig(x) + (" **< 10**" if x < TARGET else "")


COLUMNS = ["study", "preset", "model", "step", "batch shape", "sample ms (CPU / wall)", "sampled /s",
           "train B", "trained /s, CPU", "sample / train, CPU", "trained /s, H100 ESTIMATE",
           "H100 µs/step, ESTIMATE", "sample / train, H100 ESTIMATE"]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [r.study, r.preset, r.model, str(r.step), r.shape,
                 f"{1e3 * r.sample_cpu_s:.2f} / {1e3 * r.sample_s:.2f}", rate(r.sample_rate), str(r.train_batch),
                 rate(r.train_rate), ratio(r.ratio_cpu), rate(r.gpu_rate_estimate),
                 sig(1e6 * r.gpu_step_s_estimate), ratio(r.ratio_gpu_estimate)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(studies: list[str], presets: list[str] | None, min_seconds: float = 0.5, train_steps: int = 3,
        max_train_tokens: int = 4096) -> list[Row]:
    """Rows for every (study, preset) asked for; ``presets`` None takes each study's defaults."""
    rows = []
    for study in studies:
        for preset, overrides in PRESETS[study]:
            if presets is None or preset in presets:
                rows += measure(study, preset, overrides, min_seconds, train_steps, max_train_tokens)
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", default=",".join(PRESETS), help="comma-separated (default: every study that trains)")
    ap.add_argument("--presets", default=None, help="comma-separated preset names (default: each study's list)")
    ap.add_argument("--min-seconds", type=float, default=0.5, help="wall time of sampling calls per row (default 0.5)")
    ap.add_argument("--train-steps", type=int, default=3, help="timed training steps after one warm-up (default 3)")
    ap.add_argument("--max-train-tokens", type=int, default=4096,
                    help="model tokens of the timed training batch at most (default 4096)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, the loader's one thread)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/worlds.json"))
    args = ap.parse_args(argv)
    studies = [s for s in args.studies.split(",") if s]
    unknown = [s for s in studies if s not in PRESETS]
    if unknown:
        ap.error(f"unknown or non-training studies {unknown}; known: {', '.join(PRESETS)}")
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    rows = run(studies, args.presets.split(",") if args.presets else None, args.min_seconds, args.train_steps,
               args.max_train_tokens)
    print(f"\nrates per CPU second, {args.threads} thread(s); H100 columns are ESTIMATES "
          f"({MFU:.0%} of {H100_BF16_PEAK / 1e12:.0f} TFLOP/s), no GPU was used; "
          f"'/s' counts tokens, or points for vector worlds\n")
    print(table(rows))
    cpu_misses = sum(r.ratio_cpu < TARGET for r in rows)
    gpu_misses = sum(r.ratio_gpu_estimate < TARGET for r in rows)
    print(f"\nbelow the {TARGET:.0f}x target: {cpu_misses} of {len(rows)} rows on this CPU, {gpu_misses} of "
          f"{len(rows)} on the H100 estimate; total {time.perf_counter() - t0:.0f} s")
    out = {"date": str(dt.date.today()), "args": {k: str(v) for k, v in vars(args).items()},
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "python": platform.python_version(), "torch": torch.__version__,
                       "load_average": os.getloadavg()},
           "gpu_estimate": {"peak_flops": H100_BF16_PEAK, "mfu": MFU,
                            "flops_formula": "6*N_non_embedding + 6*n_layers*seq*d_model per model token"},
           "target": TARGET, "rows": [asdict(r) for r in rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
