"""ICTR, the in-context topic-repetition rate of a model on the ICG world.

Definition (spec ``icg.md``, "The metric")::

    ICTR_X(k) = (1 / n) Σ_i 1[ g_i is well formed  and  argmax_t' log p(g_i | t') = t_i ]

    t_i ~ Uniform(X), X ∈ {R, C, U}
    prompt_i = <bos> x_1 <sep> ... x_k <sep>,  x_j ~ p(x | t_i)
    g_i ~ model(· | prompt_i), L tokens at temperature 1

The argmax runs over all topics R ∪ C ∪ U (:meth:`ICGWorld.attribute`). A generation
with a special token inside (``<sep>``, ``<eos>``, ...) is *malformed*: it is counted in
n and never as a repetition, and its share is reported as ``malformed``. The 95%
interval is Wilson's score interval on the n generations. The reference
``bayes_ictr`` is the mean over the same prompts of p(β_{k+1} = t_i | x_{1:k}) under the
training distribution (:meth:`ICGWorld.bayes_ictr`): the Bayes-optimal predictor
repeats R topics and not C or U, so a model above it on C or U shows ICG
generalization.

Jiang et al., "On the In-context Generation of Language Models", EMNLP 2024 (ICTR);
spec ``icg.md``.

Prompts are nested across shot counts: each topic set gets n topics with k_max
paragraphs each, and the k-shot prompt is the first k of them, so a curve over k
compares the same topics. Sampling for the cell (set, k) uses its own generator seeded
by ``(seed, set, k)``: a cell's numbers do not depend on which other cells are measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from scipy.stats import binomtest
from torch import nn

from iclab.errors import InputError
from iclab.probes.base import Probe, as_tokens, batched, model_device
from iclab.probes.ictr_sampling import sample_continuations, vocab_size_of
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.worlds.base import TokenBatch
from iclab.worlds.icg import TOPIC_SETS, ICGWorld

METRICS = ("ictr", "ictr_lo", "ictr_hi", "malformed", "bayes_ictr")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``."""
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class ICTRPrompts:
    """The fixed prompts of an ICTR measurement and the world that scores the generations.

    Attributes
    ----------
    world : ICGWorld
    batches : dict of str to TokenBatch
        Per topic set, n prompts with k_max shots: tokens (n, 1 + k_max (L + 1)),
        ``info["topic"]`` (n,), ``info["paragraphs"]`` (n, k_max, L).
    bayes : dict of (str, int) to float
        Bayes-optimal ICTR reference per (topic set, k), computed once.
    """

    world: ICGWorld
    batches: dict[str, TokenBatch]
    bayes: dict[tuple[str, int], float] = field(default_factory=dict)

    def shot(self, topic_set: str, k: int) -> np.ndarray:
        """Token ids (n, 1 + k (L + 1)) of the k-shot prompts of ``topic_set``."""
        return self.batches[topic_set].tokens[:, :1 + k * (self.world.paragraph_len + 1)]


class ICTR(Probe):
    """In-context topic-repetition rate per topic set and shot count (see the module docstring).

    Parameters
    ----------
    shots : list of int, default [1, 2, 3, 5, 8]
        k, paragraphs in the prompt.
    n_prompts : int, default 128
        Prompts (and generations) per topic set and k.
    topic_sets : list of {"R", "C", "U"}, default ["R", "C", "U"]
    batch_size : int, default 128
        Prompts sampled together.
    seed : int, default 0
        Seed of the sampling generators.
    confidence : float, default 0.95
        Level of the Wilson interval.

    Use ``prompts = probe.prompts(world, rng)`` once, then ``probe(model, prompts)`` for
    each model or training step. The model must be a causal LM over the world's 324
    tokens. Returns rows ``(probe="ictr", metric, label=topic set, pos=k)`` for the
    metrics ``ictr, ictr_lo, ictr_hi, malformed, bayes_ictr``, and arrays of shape
    (topic set, k) named after the metrics, with ``"shots"`` (k,) and
    ``"generations"`` (topic set, k, n, L) token ids.
    """

    name: ClassVar[str] = "ictr"

    shots: list[int] = Field(default_factory=lambda: [1, 2, 3, 5, 8], min_length=1)
    n_prompts: int = Field(128, ge=1)
    topic_sets: list[Literal["R", "C", "U"]] = Field(default_factory=lambda: list(TOPIC_SETS), min_length=1)
    batch_size: int = Field(128, ge=1)
    seed: int = Field(0, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError(f"every shot count must be >= 1; got {v}")
        return sorted(set(v))

    @field_validator("topic_sets")
    @classmethod
    def _sets(cls, v: list[str]) -> list[str]:
        return [s for s in TOPIC_SETS if s in v]  # canonical order, no duplicates

    def prompts(self, world: ICGWorld, rng: np.random.Generator) -> ICTRPrompts:
        """Draw the prompts (n per topic set, nested over k) and their Bayes reference."""
        if not isinstance(world, ICGWorld):
            raise InputError(f"ICTR needs an ICG world; got {type(world).__name__}")
        k_max = self.shots[-1]
        batches, bayes = {}, {}
        for s in self.topic_sets:
            batch = world.prompts(rng, self.n_prompts, s, k_max)
            batches[s] = batch
            for k in self.shots:
                paragraphs = batch.info["paragraphs"][:, :k]  # (n, k, L)
                bayes[s, k] = float(world.bayes_ictr(paragraphs, batch.info["topic"]).mean())
        return ICTRPrompts(world, batches, bayes)

    def __call__(self, model: nn.Module, prompts: ICTRPrompts) -> ProbeResult:
        world = prompts.world
        missing = [s for s in self.topic_sets if s not in prompts.batches]
        if missing or self.shots[-1] > prompts.batches[self.topic_sets[0]].info["paragraphs"].shape[1]:
            raise InputError(f"these prompts were not made by this probe (sets {sorted(prompts.batches)}); "
                                  "make them with probe.prompts(world, rng)")
        vocab = vocab_size_of(model)
        if vocab is None:  # no config or unembedding says: read the width of the logits
            with torch.no_grad():
                out = model(input_ids=as_tokens(model, prompts.shot(self.topic_sets[0], 1)[:1]))
            vocab = (out["logits"] if isinstance(out, dict) else out.logits).shape[-1]
        if vocab != world.vocab_size:
            raise InputError(f"ICTR needs a model over the ICG world's {world.vocab_size} tokens; "
                                  f"this model has a vocabulary of {vocab}")
        L = world.paragraph_len
        shape = (len(self.topic_sets), len(self.shots))
        arrays = {m: np.zeros(shape) for m in METRICS}
        n = len(prompts.batches[self.topic_sets[0]])
        gens = np.zeros((*shape, n, L), dtype=np.int64)  # (topic set, k, n, L)
        rows = []
        for i, s in enumerate(self.topic_sets):
            topic = prompts.batches[s].info["topic"]  # (n,)
            for j, k in enumerate(self.shots):
                g = self._generate(model, prompts.shot(s, k), L, _cell_seed(self.seed, s, k))  # (n, L)
                bad = world.is_malformed(g)  # (n,)
                hit = np.zeros(len(g), dtype=bool)
                if (~bad).any():
                    hit[~bad] = world.attribute(g[~bad]) == topic[~bad]
                lo, hi = wilson_interval(hit.sum(), hit.size, self.confidence)
                values = {"ictr": hit.mean(), "ictr_lo": lo, "ictr_hi": hi, "malformed": bad.mean(),
                          "bayes_ictr": prompts.bayes[s, k]}
                for m, v in values.items():
                    arrays[m][i, j] = v
                    rows.append(Row(self.name, m, v, pos=k, label=s))
                gens[i, j] = g
        arrays["shots"] = np.array(self.shots)
        arrays["generations"] = gens
        return ProbeResult(rows, arrays)

    def _generate(self, model: nn.Module, tokens: np.ndarray, n_new: int, seed: int) -> np.ndarray:
        """Generations (n, n_new) for prompts (n, pos), in chunks of ``batch_size``."""
        device = model_device(model)
        gen = torch.Generator(device=device).manual_seed(seed)
        x = as_tokens(model, tokens)  # (n, pos)
        out = []
        for sl in batched(len(x), self.batch_size):
            g = sample_continuations(model, x[sl], n_new, gen)  # (chunk, n_new)
            out.append(g.cpu().numpy())
        g = np.concatenate(out)
        if g.shape != (len(x), n_new):
            raise InputError(f"the model produced generations of shape {g.shape}; expected {(len(x), n_new)}")
        return g


def _cell_seed(seed: int, topic_set: str, k: int) -> int:
    """A 63-bit seed for the generator of cell (topic set, k)."""
    state = np.random.SeedSequence([seed, TOPIC_SETS.index(topic_set), k]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1
