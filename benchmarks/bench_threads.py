"""PyTorch CPU threads for the cpu presets' models: one thread against all of them, on an idle
machine and with one other busy process, side by side in one run.

Each case trains its preset's model (built from the preset, same seed, same batches) for
``--steps`` steps with ``torch.set_num_threads(n)`` for each n, alternating, ``--repeats``
times; a step's time is the median over the timed steps. ``--busy`` starts one process that
spins on a core for the whole run (what a second job on a 2-core machine does), so the
all-threads case then shares a core with it.

    speed-up = step time at 1 thread / step time at n threads   (> 1: more threads help)

Run: ``.venv/bin/python benchmarks/bench_threads.py [--steps 60] [--repeats 3] [--busy]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np
import torch

from iclab.config import load_config
from iclab.models.build import build_model
from iclab.models.vector import VectorModel
from iclab.studies.induction_heads.config import InductionHeadsConfig
from iclab.studies.task_vectors.config import TaskVectorsConfig
from iclab.train.batches import host_tensors, loss_on_batch
from iclab.train.prefetch import batch_at
from iclab.train.loop import make_optimizer


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def cases():
    """(name, model, world, train config) of each preset measured."""
    ih = load_config(InductionHeadsConfig, "induction-heads", "cpu")
    spec = ih.model.model_copy(update={"n_layers": 2})
    yield "induction-heads cpu (2-layer)", build_model(spec, ih.world.vocab_size, ih.seed), ih.world, ih.train
    tv = load_config(TaskVectorsConfig, "task-vectors", "cpu-long")
    yield "task-vectors cpu-long (6-layer)", VectorModel(tv.model, tv.world.dim, seed=tv.seed), tv.world, tv.train


def step_times(model, world, train_cfg, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    opt = make_optimizer(model, train_cfg)
    times = []
    for s in range(steps):
        batch = host_tensors(batch_at(world, 0, s, train_cfg.batch_size))
        t = time.perf_counter()
        loss = loss_on_batch(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return float(np.median(times[5:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", action="store_true", help="one other process spins on a core meanwhile")
    args = ap.parse_args()
    most = os.cpu_count() or 1
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,)) if args.busy else None
    if spinner:
        spinner.start()
    try:
        print(f"{most} cores; {'one other busy process' if args.busy else 'idle'}; {args.steps} steps x {args.repeats}")
        print(f"{'case':32s} {'1 thread ms/step':>17s} {f'{most} threads ms/step':>18s} {'speed-up':>9s}")
        for name, model, world, train_cfg in cases():
            model.train()
            res = {1: [], most: []}
            for _ in range(args.repeats):
                for n in (1, most):
                    res[n].append(step_times(model, world, train_cfg, n, args.steps))
            one, many = np.median(res[1]) * 1e3, np.median(res[most]) * 1e3
            print(f"{name:32s} {one:17.1f} {many:18.1f} {one / many:9.2f}")
    finally:
        if spinner:
            stop.set()
            spinner.join()


if __name__ == "__main__":
    main()
