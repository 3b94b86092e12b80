"""Sampling speed of the ICG world: tokens per second of ``ICGWorld.sample``.

A document is 1 + N (L + 1) = 751 tokens at the defaults; a batch of 32 documents is
24,032 tokens. The world must never starve a training loop, so the target is at least
1M tokens/s on one CPU thread. Also times the oracle (posterior and Bayes ICTR of k-shot
prompts) and attribution, which the ICTR probe calls.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_icg_sampling.py``
"""

from __future__ import annotations

import time

import numpy as np

from iclab.worlds.icg import ICGWorld


def per_call(fn, min_seconds: float = 0.5) -> float:
    """Median seconds per call of ``fn()`` over repeats filling about ``min_seconds``, after one warm-up."""
    fn()
    times = []
    while sum(times) < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'arity M':>7} {'topics':>6} {'batch':>5} {'ms/batch':>9} {'Mtok/s':>7}")
    for M in (2, 3, 4):
        world = ICGWorld(arity=M)
        for batch in (32, 256):
            seconds = per_call(lambda: world.sample(rng, batch))
            tokens = batch * (1 + world.n_paragraphs * (world.paragraph_len + 1))
            rate = tokens / seconds / 1e6
            print(f"{M:>7} {world.n_topics:>6} {batch:>5} {1e3 * seconds:>9.2f} {rate:>7.1f}")

    print(f"\n{'oracle (M=3, 256 prompts)':<34} {'ms':>8}")
    world = ICGWorld()
    for k in (1, 5, 10):
        b = world.prompts(rng, 256, "R", k=k)
        seconds = per_call(lambda: world.bayes_ictr(b.info["paragraphs"], b.info["topic"]), 0.3)
        print(f"{f'bayes_ictr, k={k}':<34} {1e3 * seconds:>8.1f}")
    x = world.sample_paragraphs(rng, rng.integers(0, world.n_topics, size=2000))
    print(f"{'attribute, 2000 paragraphs':<34} {1e3 * per_call(lambda: world.attribute(x), 0.3):>8.1f}")


if __name__ == "__main__":
    main()
