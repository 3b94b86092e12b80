"""Training throughput and model FLOPs utilisation (MFU) of the paper presets' models on a GPU:
the check to run when a GPU is lent (``scripts/device_check.sh`` runs it with the rest).

    tokens/s = tokens of the timed steps / seconds from the start of step ``warmup`` to the
               start of the last step (the GPU synchronised at both ends)
    MFU      = tokens/s * FLOPs per token / peak, FLOPs per token = 6 N + 6 n_layers seq d_model
               per backbone token (N without embeddings; two backbone tokens a point of a
               vector world), against the card's dense bf16 peak from its data sheet
               (H100/H200 SXM 989 TFLOP/s) and against the best bf16 matmul measured here

Each study's model is its largest at the preset (``study_models.largest``), trained by
``iclab.train.loop.train`` as a run would (``train.device``, ``precision`` auto: bf16 autocast on
a GPU, fused AdamW, pinned batches; ``--compile`` and ``--workers`` set ``train.compile`` and
``train.data_workers``), with no probes or checkpoints. A curriculum world is fixed at its last
stage. ``--device cpu`` runs the same on the CPU (the smoke test does, on the cpu presets).

Run on the device machine: ``python3 benchmarks/bench_gpu.py --out $OUT/gpu.json``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")

import torch
from study_models import flops_per_token, largest, model_seq
from torch.optim.optimizer import register_optimizer_step_pre_hook

from iclab.train.batches import tokens_in
from iclab.train.prefetch import batch_at
from iclab.train.loop import train

#: dense bf16 FLOP/s from the data sheets, by a word of the device's name
DATA_SHEET_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}
PAPER = ("induction-heads", "icg-generalization", "graph-tracing", "bayesian-icl", "data-properties",
         "regression-icl", "task-vectors")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, n: int = 8192, reps: int = 10) -> float:
    """Best FLOP/s of an (n, n) @ (n, n) product in bf16 on the GPU (fp32 on the CPU, n 1024)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    n = n if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def time_training(study: str, preset: str, device: str, steps: int, warmup: int, compile_: str,
                  workers: str) -> dict:
    trainee, model = largest(study, preset)
    batch = batch_at(trainee.world, 0, 0, trainee.train.batch_size)
    seq, tokens = model_seq(batch), tokens_in(batch)
    vector = hasattr(model, "backbone")
    fpt = flops_per_token(model, seq)[0] * (2 if vector else 1)  # per unit: a point is two tokens
    setting = {"auto": "auto", "true": True, "false": False}[compile_]
    cfg = trainee.train.model_copy(update={
        "steps": steps, "eval_every": steps + 1, "ckpt_every": steps + 1, "log_every": steps, "device": device,
        "compile": setting, "data_workers": workers if workers == "auto" else int(workers)})
    stamps: list[float] = []

    def on_step(opt, args, kwargs):
        if len(stamps) in (warmup, steps - 1):
            sync(device)
        stamps.append(time.perf_counter())

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    hook = register_optimizer_step_pre_hook(on_step)
    t0 = time.perf_counter()
    try:
        train(model, trainee.world, cfg, data_seed=0)
    finally:
        hook.remove()
    whole = time.perf_counter() - t0
    seconds = stamps[steps - 1] - stamps[warmup]
    rate = tokens * (steps - 1 - warmup) / seconds
    return {"study": study, "preset": preset, "model": trainee.label, "batch": trainee.train.batch_size,
            "seq": seq, "units_per_step": tokens, "flops_per_unit": fpt, "compile": compile_, "workers": workers,
            "units_per_s": rate, "flops_per_s": rate * fpt, "ms_per_step": 1e3 * seconds / (steps - 1 - warmup),
            "whole_run_s": whole, "peak_memory_gib": (torch.cuda.max_memory_allocated() / 2**30
                                                      if device == "cuda" else None)}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", nargs="+", default=list(PAPER))
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=15, help="steps left out of the timing (compiling happens there)")
    ap.add_argument("--compile", nargs="+", default=["false", "true"], choices=["auto", "true", "false"])
    ap.add_argument("--workers", default="auto", help='train.data_workers: "auto" or a number')
    ap.add_argument("--out", type=Path, default=Path("bench_out/gpu.json"))
    args = ap.parse_args(argv)
    if args.steps < args.warmup + 3:
        ap.error(f"--steps ({args.steps}) must be at least --warmup ({args.warmup}) + 3")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU here (--device cpu runs the same on the CPU)")
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    sheet = next((v for k, v in DATA_SHEET_BF16.items() if k in name), None) if args.device == "cuda" else None
    measured = matmul_peak(args.device)
    print(f"device {name}; data-sheet bf16 peak {sheet and sheet / 1e12} TFLOP/s; best matmul here "
          f"{measured / 1e12:.1f} TFLOP/s; torch {torch.__version__}", flush=True)
    rows = []
    for study in args.studies:
        for c in args.compile:
            row = time_training(study, args.preset, args.device, args.steps, args.warmup, c, args.workers)
            row["mfu_data_sheet"] = row["flops_per_s"] / sheet if sheet else None
            row["mfu_measured_peak"] = row["flops_per_s"] / measured
            rows.append(row)
            print(f"{study:<20} compile {c:<5} {row['ms_per_step']:8.2f} ms/step {row['units_per_s']:12,.0f} units/s "
                  f"MFU {100 * (row['mfu_data_sheet'] or 0):5.1f}% of the data sheet, "
                  f"{100 * row['mfu_measured_peak']:5.1f}% of the matmul; whole run {row['whole_run_s']:.0f} s"
                  + (f", {row['peak_memory_gib']:.1f} GiB" if row["peak_memory_gib"] is not None else ""), flush=True)
    print("\n| model | batch × seq | compile | ms/step | units/s | MFU (data sheet) | MFU (measured matmul) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        sheet_mfu = f"{100 * r['mfu_data_sheet']:.1f}%" if r["mfu_data_sheet"] is not None else "–"
        print(f"| {r['study']} {r['preset']} ({r['model']}) | {r['batch']} × {r['seq']} | {r['compile']} | "
              f"{r['ms_per_step']:.2f} | {r['units_per_s']:,.0f} | {sheet_mfu} | {100 * r['mfu_measured_peak']:.1f}% |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": name, "torch": torch.__version__, "data_sheet_peak": sheet,
                                    "measured_peak": measured, "args": {k: str(v) for k, v in vars(args).items()},
                                    "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":  # the guard data workers (spawned processes) need
    main()
