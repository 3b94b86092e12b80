"""Analysis cost of the graph-tracing probe: one pass per batch of walks vs a re-run per context length.

The model is causal, so one forward pass over a whole walk gives the hidden states and
logits of every context length; the baseline re-runs the model on the walk cut at each
context length c (what a probe that calls the model once per c would do). Both compute
the same metrics (rule following, node means, energies, PCA, Procrustes) and give the same
numbers (tests/test_graph_tracing.py checks it); this prints seconds per walk and the ratio
re-run / one pass, for the cpu preset's model size and a larger stand-in for a pretrained
LM, on random weights (the cost does not depend on them).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_graph_analysis.py``
"""

from __future__ import annotations

import time

import numpy as np
import torch

from iclab.models.build import ModelSpec, build_model
from iclab.probes.graph_tracing import GraphTracing, GraphWalks, log_context_lengths
from iclab.worlds.base import TokenBatch
from iclab.worlds.graph import GraphWorld

CASES = [  # (label, model spec, walk length, walks, pool)
    ("cpu preset model, walk pooling", ModelSpec(n_layers=2, d_model=128, n_heads=4, attn_only=True, max_len=1024),
     1024, 16, "walk"),
    ("cpu preset model, batch pooling", ModelSpec(n_layers=2, d_model=128, n_heads=4, attn_only=True, max_len=1024),
     1024, 16, "batch"),
    ("8 layers d_model 512 (stand-in LM)", ModelSpec(n_layers=8, d_model=512, n_heads=8, max_len=1024),
     1024, 4, "walk"),
]


def one_pass(model, probe: GraphTracing, walks: TokenBatch, graph) -> None:
    probe(model, GraphWalks(walks, graph))


def rerun_per_context(model, probe: GraphTracing, walks: TokenBatch, graph) -> None:
    for c in probe.context_lengths:
        cut = TokenBatch(walks.tokens[:, :c], None, {"nodes": walks.info["nodes"][:, :c],
                                                     "labels": walks.info["labels"]})
        probe.model_copy(update={"context_lengths": [c]})(model, GraphWalks(cut, graph))


def seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'case':<36} {'walk':>5} {'walks':>5} {'C':>3} {'one pass s/walk':>16} {'re-run s/walk':>14} "
          f"{'ratio':>6}")
    for label, spec, length, n, pool in CASES:
        world = GraphWorld(walk_length=length, vocab=64, seed=1)
        walks = world.prompts(np.random.default_rng(0), n)
        model = build_model(spec, 64, seed=0).eval()
        contexts = log_context_lengths(length, 14).tolist()
        probe = GraphTracing(context_lengths=contexts, pool=pool, batch_size=n)
        graph = world.graph
        one_pass(model, probe, walks, graph)  # warm-up
        repeats = 3 if spec.d_model <= 128 else 1
        t_one = seconds(lambda: one_pass(model, probe, walks, graph), repeats)
        t_re = seconds(lambda: rerun_per_context(model, probe, walks, graph), repeats)
        print(f"{label:<36} {length:>5} {n:>5} {len(contexts):>3} {t_one / n:>16.3f} {t_re / n:>14.3f} "
              f"{t_re / t_one:>6.2f}")


if __name__ == "__main__":
    main()
