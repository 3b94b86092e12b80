"""How many batches a second :class:`iclab.train.prefetch.Prefetcher` delivers with 0, 1, 2, ...
worker processes (``train.data_workers``), for a study's world at a preset's batch size.

The consumer takes each batch as soon as it is ready (``--consume-ms`` makes it hold each one
that long, as a training step would), so the figure is the stream's ceiling: what a GPU
that trains faster than this could get. Start-up (spawning the workers, sending them the
world) is reported apart, as the time to the first batch; the rate is over the batches after
the first ``--warm``. ``prepare`` is ``host_tensors`` (what the loop does on the CPU; pinning
needs CUDA). ``--sleep-ms`` replaces the world by induction-heads' world sleeping that long per
batch: a slow world that needs no core, to see the machinery's parallelism on a machine whose
cores are busy.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_prefetch.py \\
        --study bayesian-icl --preset paper --workers 0 1 2

Workers are spawned: the ``__main__`` guard below is what every script using them needs.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")

from iclab.worlds import RepeatedTokens  # torch-free, as the workers need


def measure(world, batch_size: int, workers: int, n: int, warm: int, consume_s: float) -> dict:
    from iclab.train.batches import host_tensors
    from iclab.train.prefetch import Prefetcher

    t0 = time.perf_counter()
    with Prefetcher(world, 0, batch_size, range(warm + n), workers, host_tensors) as batches:
        for step in range(warm + n):
            batches.get(step)
            if step == 0:
                first = time.perf_counter() - t0
            if step == warm - 1:
                t_warm, cpu_warm, workers_warm = time.perf_counter(), _cpu(), _workers_cpu()
            if consume_s:
                time.sleep(consume_s)
        wall, cpu, workers_cpu = time.perf_counter() - t_warm, _cpu() - cpu_warm, _workers_cpu() - workers_warm
    return {"workers": workers, "first_s": first, "batches_per_s": n / wall, "ms_per_batch": 1e3 * wall / n,
            "main_cpu_per_batch_ms": 1e3 * cpu / n, "workers_cpu_per_batch_ms": 1e3 * workers_cpu / n}


class SleepyTokens(RepeatedTokens):
    """RepeatedTokens that sleeps ``sleep_ms`` per batch (at module level: workers unpickle it)."""

    sleep_ms: float = 10.0

    def sample(self, rng, batch_size):
        time.sleep(self.sleep_ms / 1e3)
        return super().sample(rng, batch_size)


def _cpu() -> float:
    """CPU seconds of this process, its threads included (not the workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _workers_cpu() -> float:
    """CPU seconds of the live worker processes so far."""
    import psutil

    return sum(sum(p.cpu_times()[:2]) for p in psutil.Process().children()
               if "spawn_main" in " ".join(p.cmdline()))


def main() -> None:
    from iclab.studies import get_study

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="bayesian-icl")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("-n", type=int, default=300, help="batches timed")
    ap.add_argument("--warm", type=int, default=20, help="batches before the timing starts")
    ap.add_argument("--consume-ms", type=float, default=0.0)
    ap.add_argument("--sleep-ms", type=float, default=None)
    args = ap.parse_args()

    cfg = get_study(args.study).load_config(args.preset)
    world = cfg.world.build() if hasattr(cfg.world, "build") else cfg.world
    b = cfg.train.batch_size
    if args.sleep_ms is not None:
        world = SleepyTokens(sleep_ms=args.sleep_ms)
    print(f"{args.study} {args.preset}: {type(world).__name__}, batch {b}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for w in args.workers:
        r = measure(world, b, w, args.n, args.warm, args.consume_ms / 1e3)
        print(f"workers {w}: {r['batches_per_s']:7.1f} batches/s ({r['ms_per_batch']:.2f} ms each; "
              f"CPU ms each: main process {r['main_cpu_per_batch_ms']:.2f}, workers {r['workers_cpu_per_batch_ms']:.2f}), first batch after {r['first_s']:.2f} s; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
