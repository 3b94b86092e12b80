"""In-context accuracy on the GINC world, against exact Bayesian references.

Definition (Xie et al. 2022, Sec. 4; spec ``mechanisms.md``, bayesian-icl)::

    acc(k, l) = (1 / n) Σ_i 1[ argmax_y f(y | prompt_i) ∈ A_i ]

    prompt_i = x_1 / ... / x_k / o_{k+1,1:l-1},  examples of length l from one concept θ_i
    A_i = argmax_y p(o_{k+1,l} = y | o_{k+1,1:l-1}, θ_i, s_0,i)   (the answer; a set where tokens tie)

for the model (f = its next-token distribution after the last prompt token; k = 0 is
zero-shot) and for three references computed exactly on the same prompts
(:mod:`iclab.worlds.ginc_oracle`):

- ``bayes_accuracy``: the Bayes-optimal in-context predictor, which knows the prompt
  format and has the pretraining prior (uniform over the pretraining concepts);
- ``bayes_all_accuracy``: the same with a prior over all concepts, unseen ones included;
- ``pretrain_lm_accuracy``: the Bayes-optimal language model of the pretraining
  documents, reading the prompt's tokens as the start of a document: what a model trained
  on the documents approximates.

A prompt the pretraining-prior predictor finds impossible (probability 0 under every
pretraining concept) counts as its miss; ``bayes_undefined`` is their share. A
predictor's own argmax ties go to the lowest token id; the answer keeps every tied token
(GINC keeps the lowest, see :mod:`iclab.worlds.ginc`).

Prompt sets (``variants``): ``id`` (pretraining concepts, a delimiter after each example,
as in the seed's in-distribution prompts), ``unseen-concepts`` (concepts left out of
pretraining), ``no-delimiters`` and ``shuffled-delimiters`` (the ``id`` prompts' very
examples with the delimiters removed, or moved to random places: a shift of format only,
so the format-aware Bayes references do not change). Prompts are nested over k: the
k-shot prompt is the first k examples of the k_max-shot one and the same test input, so a
curve over k compares the same queries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from iclab.errors import InputError
from iclab.limits import MAX_BATCH, MAX_LIST, MAX_PROMPTS, MAX_SEQ
from iclab.probes.base import Probe, as_tokens, batched
from iclab.probes.ictr_sampling import vocab_size_of
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.worlds import ginc_oracle
from iclab.worlds.ginc import GINCWorld

#: prompt set name -> (concept set, separator)
VARIANTS: dict[str, tuple[str, str]] = {
    "id": ("pretrain", "delimiter"),
    "unseen-concepts": ("unseen", "delimiter"),
    "no-delimiters": ("pretrain", "none"),
    "shuffled-delimiters": ("pretrain", "shuffled"),
}
METRICS = ("accuracy", "bayes_accuracy", "bayes_all_accuracy", "pretrain_lm_accuracy", "bayes_undefined")
Variant = Literal["id", "unseen-concepts", "no-delimiters", "shuffled-delimiters"]


def hit_rate(predicted: np.ndarray, answers: np.ndarray) -> float:
    """Share of predictions (n,) inside their answer sets (n, V); -1 (no prediction) is a miss."""
    ok = predicted >= 0
    hit = np.zeros(predicted.shape, dtype=bool)
    hit[ok] = answers[np.nonzero(ok)[0], predicted[ok]]
    return float(hit.mean())


def cell_label(variant: str, l: int) -> str:
    """The ``label`` of a row: the prompt set and the example length, e.g. ``"id l=5"``."""
    return f"{variant} l={l}"


@dataclass(frozen=True)
class GINCPrompts:
    """Fixed GINC prompts and the references' predictions on them, made by :meth:`GINCAccuracy.prompts`.

    Attributes
    ----------
    world : GINCWorld
    tokens : dict of (variant, l, k) to int array (n, pos)
        The k-shot prompts of each cell.
    answers : dict of (variant, l) to bool array (n, V)
        The answer sets: the true concept's most likely next tokens.
    references : dict of (variant, l, k) to dict of str to int array (n,)
        Predicted tokens of ``"bayes"``, ``"bayes_all"`` and ``"pretrain_lm"`` (-1: no prediction).
    """

    world: GINCWorld
    tokens: dict[tuple[str, int, int], np.ndarray]
    answers: dict[tuple[str, int], np.ndarray]
    references: dict[tuple[str, int, int], dict[str, np.ndarray]]


class GINCAccuracy(Probe):
    """In-context accuracy against k for each l and prompt set (see the module docstring).

    Parameters
    ----------
    shots : list of int, default [0, 1, 2, 4, 8, 16, 32, 64]
        k, examples before the test input (0: zero-shot). GINC's values.
    lengths : list of int, default [3, 5, 8, 10]
        l, tokens per example (the test input has l - 1). GINC's values.
    variants : list of str, default all of :data:`VARIANTS`
    n_prompts : int, default 256
        Prompts per (variant, l), nested over k.
    batch_size : int, default 64
        Prompts per forward pass.

    Use ``prompts = probe.prompts(world, rng)`` once, then ``probe(model, prompts)`` per
    model or step; a probe with fewer shots, lengths or variants can reuse the prompts of
    a larger one. The model must be a causal LM over the world's tokens whose context holds
    the longest prompt, k_max (l + 1) + l - 1 tokens. Returns rows ``(probe="ginc", metric,
    label=cell_label(variant, l), pos=k)`` for :data:`METRICS`, and arrays of shape
    (variant, l, k) named after the metrics, with ``"shots"`` and ``"lengths"``.
    """

    name: ClassVar[str] = "ginc"

    shots: list[Annotated[int, Field(ge=0, le=MAX_SEQ)]] = Field(default_factory=lambda: [0, 1, 2, 4, 8, 16, 32, 64],
                                                                 min_length=1, max_length=MAX_LIST)
    lengths: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(default_factory=lambda: [3, 5, 8, 10], min_length=1,
                                                                   max_length=MAX_LIST)
    variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS), min_length=1)
    n_prompts: int = Field(256, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: list[int]) -> list[int]:
        if any(k < 0 for k in v):
            raise ValueError(f"every shot count must be >= 0; got {v}")
        return sorted(set(v))

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, v: list[int]) -> list[int]:
        if any(l < 2 for l in v):
            raise ValueError(f"every example length must be >= 2 (a test input of l - 1 tokens); got {v}")
        return sorted(set(v))

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: list[str]) -> list[str]:
        return [x for x in VARIANTS if x in v]  # canonical order, no duplicates

    def max_prompt_len(self) -> int:
        """Tokens of the longest prompt, k_max (l_max + 1) + l_max - 1."""
        k, l = self.shots[-1], self.lengths[-1]
        return k * (l + 1) + l - 1

    def prompts(self, world: GINCWorld, rng: np.random.Generator) -> GINCPrompts:
        """Draw the prompts (n per variant and l, nested over k) and every reference's predictions."""
        if not isinstance(world, GINCWorld):
            raise InputError(f"the ginc probe needs a GINC world; got {type(world).__name__}")
        k_max = self.shots[-1]
        tokens, answers, refs = {}, {}, {}
        pretrain, everything = world.concept_set("pretrain"), world.concept_set("all")
        for l in self.lengths:
            drawn: dict[str, dict] = {}
            for variant in self.variants:
                concepts, separator = VARIANTS[variant]
                if concepts not in drawn:
                    ex = world.sample_examples(rng, self.n_prompts, k_max, l, concepts)
                    bayes = ginc_oracle.bayes_by_shots(world, ex["examples"], self.shots, pretrain)
                    bayes_all = ginc_oracle.bayes_by_shots(world, ex["examples"], self.shots, everything)
                    drawn[concepts] = {"ex": ex, "bayes": bayes, "bayes_all": bayes_all}
                d = drawn[concepts]
                examples = d["ex"]["examples"]  # (n, k_max + 1, l)
                answers[variant, l] = d["ex"]["answer_set"]
                for k in self.shots:
                    nested = np.concatenate([examples[:, :k], examples[:, -1:]], axis=1)  # (n, k + 1, l)
                    t = world.layout(nested, separator, rng)
                    tokens[variant, l, k] = t
                    refs[variant, l, k] = {
                        "bayes": ginc_oracle.predict(d["bayes"][k]),
                        "bayes_all": ginc_oracle.predict(d["bayes_all"][k]),
                        "pretrain_lm": ginc_oracle.predict(ginc_oracle.pretraining_predictive(world, t)),
                    }
        return GINCPrompts(world, tokens, answers, refs)

    def __call__(self, model: nn.Module, prompts: GINCPrompts) -> ProbeResult:
        missing = [(v, l, k) for v in self.variants for l in self.lengths for k in self.shots
                   if (v, l, k) not in prompts.tokens]
        if missing:
            raise InputError(f"these prompts lack cells {missing[:3]}{' ...' if len(missing) > 3 else ''}; make "
                             "them with the prompts() of a probe whose shots, lengths and variants cover this one's")
        vocab = vocab_size_of(model)
        if vocab is not None and vocab != prompts.world.vocab_size:
            raise InputError(f"the ginc probe needs a model over the world's {prompts.world.vocab_size} tokens; "
                             f"this model has a vocabulary of {vocab}")
        shape = (len(self.variants), len(self.lengths), len(self.shots))
        arrays = {m: np.zeros(shape) for m in METRICS}
        rows = []
        for (i, v), (j, l), (c, k) in itertools.product(enumerate(self.variants), enumerate(self.lengths),
                                                         enumerate(self.shots)):
            answers = prompts.answers[v, l]
            ref = prompts.references[v, l, k]
            values = {"accuracy": hit_rate(self._argmax(model, prompts.tokens[v, l, k]), answers),
                      "bayes_accuracy": hit_rate(ref["bayes"], answers),
                      "bayes_all_accuracy": hit_rate(ref["bayes_all"], answers),
                      "pretrain_lm_accuracy": hit_rate(ref["pretrain_lm"], answers),
                      "bayes_undefined": float((ref["bayes"] < 0).mean())}
            for m, val in values.items():
                arrays[m][i, j, c] = val
                rows.append(Row(self.name, m, val, pos=k, label=cell_label(v, l)))
        arrays["shots"] = np.array(self.shots)
        arrays["lengths"] = np.array(self.lengths)
        return ProbeResult(rows, arrays)

    @torch.no_grad()
    def _argmax(self, model: nn.Module, tokens: np.ndarray) -> np.ndarray:
        """The model's argmax next token after each prompt (n, pos) → (n,), in chunks."""
        x = as_tokens(model, tokens)  # (n, pos)
        out = []
        for sl in batched(len(x), self.batch_size):
            o = model(input_ids=x[sl])
            logits = o["logits"] if isinstance(o, dict) else o.logits  # (chunk, pos, vocab)
            out.append(logits[:, -1].argmax(-1).cpu().numpy())
        return np.concatenate(out)

