"""Screen a task-vectors recipe: train the synthetic model with the study's own probes and apply
the science check's three criteria, without the rest of the study (no UMAP, figures or report).

Usage: ``python scripts/screen_task_vectors.py [--preset cpu] [KEY=VALUE ...]``, e.g.
``python scripts/screen_task_vectors.py --preset cpu-long world.bases=orthogonal-2x8 world.points=12``.

Every ``train.eval_every`` steps it prints the best mean TD at the last x (and every layer's) and
each basis's loss over all points as a share of predicting 0; at the end, the error / rank at each
point for the transformer and least squares, and whether the three criteria hold (TD from
≤ 1/B + 0.15 at step 0 to ≥ 0.8; every basis's error at the last point ≤ 0.5; below least squares
there on one basis). The runs of ``docs/task-vectors-notes.md`` were made with it, one thread each
(``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from iclab.config import load_config, parse_overrides
from iclab.models.vector import VectorModel
from iclab.rows import Rows
from iclab.studies.task_vectors.config import TaskVectorsConfig
from iclab.studies.task_vectors.synthetic import error_curves, measure_synthetic
from iclab.train.loop import train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE, as iclab's --set")
    args = parser.parse_args(argv)
    cfg = load_config(TaskVectorsConfig, "task-vectors", args.preset, parse_overrides(args.overrides))
    # TD at the last x only, no UMAP: the probe at each eval costs one pass over the prompts
    cfg = cfg.model_copy(update={"probe": cfg.probe.model_copy(update={
        "repr_position": cfg.probe.td_position, "umap": False, "baselines": ["least-squares"]})})
    world, n_bases = cfg.world, cfg.world.n_bases
    model = VectorModel(cfg.model, world.dim, seed=cfg.seed)
    prompts = world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_per_basis * n_bases)
    zero = [float((prompts.ys[prompts.info["basis"] == b].astype(np.float64) ** 2).mean()) for b in range(n_bases)]
    t0 = time.time()

    def probe(m, step):
        rows = measure_synthetic(m, prompts, cfg, None)
        td = sorted((r.layer, r.value) for r in rows if r.metric == "td")
        loss = {r.label: r.value for r in rows if r.metric == "loss"}
        print(f"step {step:6d}  t {time.time() - t0:6.0f}s  TD {max(v for _, v in td):.3f}  layers "
              f"{' '.join(f'{v:.2f}' for _, v in td)}  loss/zero "
              f"{' '.join(f'{loss[str(b)] / zero[b]:.2f}' for b in range(n_bases))}", flush=True)
        return rows.tagged(step=step)

    res = train(model, world, cfg.train, data_seed=cfg.seed, ckpt_dir=None, probe=probe)
    seconds = time.time() - t0
    rows, curves, last = Rows(res.rows), error_curves(model, cfg), world.points - 1
    err = {name: [curves.where(model=name, label=str(b), pos=last).value() for b in range(n_bases)]
           for name in ("transformer", "least-squares")}
    for name in err:
        for b in range(n_bases):
            print(f"error/rank {name:13s} basis {b}:",
                  " ".join(f"{curves.where(model=name, label=str(b), pos=i).value():.3f}" for i in range(world.points)))
    td = {s: max(r.value for r in rows if r.metric == "td" and r.step == s) for s in (0, cfg.train.steps)}
    td_ok = td[0] <= 1 / n_bases + 0.15 and td[cfg.train.steps] >= 0.8
    learned = max(err["transformer"]) <= 0.5
    beats = any(a < b for a, b in zip(err["transformer"], err["least-squares"]))
    print(f"train {seconds:.0f}s ({cfg.train.steps / seconds:.1f} steps/s)")
    print(f"RESULT TD {td[0]:.3f}->{td[cfg.train.steps]:.3f} td_ok={td_ok} learned={learned} "
          f"beats_ols={beats} PASS={td_ok and learned and beats}")


if __name__ == "__main__":
    main()
