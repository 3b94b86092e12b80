"""In-context against in-weights classification: the label a model gives a query exemplar.

Definition (Chan et al. 2022, Sec. 2; spec ``mechanisms.md``, data-properties)::

    accuracy(S)         = (1 / n) Σ_i 1[ argmax_{y ∈ labels} f(y | s_i) = y_i ]
    context_accuracy(S) = (1 / n) Σ_i 1[ argmax_{y ∈ C_i} f(y | s_i) = y_i ]
    from_context(S)     = (1 / n) Σ_i 1[ argmax_{y ∈ labels} f(y | s_i) ∈ C_i ]

for each prompt set S of sequences s_i = x_1 y_1 ... x_P y_P x_q that stop before the query's
label y_i, where f is the model's next-token distribution after the last token, ``labels``
the world's label tokens and C_i the labels of s_i's context pairs. The sets
(:class:`iclab.worlds.bursty_classes.BurstyClasses`):

- ``fewshot-holdout``: classes never trained, labels fresh per sequence: in-context learning
  (ICL). Chance (``chance`` rows) is 1 / ways, a model that picks one of the context's labels.
- ``no-support``: training classes, the query's class absent from the context: in-weights
  learning (IWL). Chance is the best guess that ignores the query, the largest share of a
  label under the Zipf law.
- ``fewshot-trained``: training classes with fresh labels: does the model follow the
  context (``accuracy``) or its weights (``own_label``, the share of predictions that are
  the class's trained label)? Chance 1 / ways.

Rows: ``(probe="classification", metric, label=set)`` for ``accuracy``, ``context_accuracy``,
``from_context``, ``chance`` and, on ``fewshot-trained``, ``own_label``. Arrays: none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from iclab.errors import InputError
from iclab.limits import MAX_BATCH, MAX_PROMPTS
from iclab.probes.base import Probe, as_tokens, batched
from iclab.probes.ictr_sampling import vocab_size_of
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.worlds.bursty_classes import BurstyClasses

SETS = ("fewshot-holdout", "no-support", "fewshot-trained")
PromptSet = Literal["fewshot-holdout", "no-support", "fewshot-trained"]


@dataclass(frozen=True)
class ClassificationPrompts:
    """Fixed evaluation sequences of a :class:`BurstyClasses` world, made by :meth:`Classification.prompts`.

    Attributes
    ----------
    tokens : dict of str to int array (n, pos)
        Each set's sequences, stopping before the query's label.
    answers : dict of str to int array (n,)
        The query's label token in the sequence.
    context_labels : dict of str to int array (n, P)
        The label tokens of the context pairs.
    own_labels : dict of str to int array (n,)
        The query class's trained label token (-1 for holdout classes).
    chance : dict of str to float
        The chance level of each set (see the module docstring).
    label_range : tuple of int
        Label tokens are ``label_range[0] <= t < label_range[1]``.
    """

    tokens: dict[str, np.ndarray]
    answers: dict[str, np.ndarray]
    context_labels: dict[str, np.ndarray]
    own_labels: dict[str, np.ndarray]
    chance: dict[str, float]
    label_range: tuple[int, int]


class Classification(Probe):
    """ICL accuracy on holdout classes and IWL accuracy on trained ones (see the module docstring).

    Parameters
    ----------
    sets : list of str, default all of :data:`SETS`
    n_prompts : int, default 512
        Sequences per set.
    batch_size : int, default 256
        Sequences per forward pass.

    Use ``prompts = probe.prompts(world, rng)`` once, then ``probe(model, prompts)`` per model
    or step; the model must be a causal LM over the world's tokens.
    """

    name: ClassVar[str] = "classification"

    sets: list[PromptSet] = Field(default_factory=lambda: list(SETS), min_length=1)
    n_prompts: int = Field(512, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(256, ge=1, le=MAX_BATCH)

    @field_validator("sets")
    @classmethod
    def _sets(cls, v: list[str]) -> list[str]:
        return [s for s in SETS if s in v]  # canonical order, no duplicates

    def prompts(self, world: BurstyClasses, rng: np.random.Generator) -> ClassificationPrompts:
        """Draw ``n_prompts`` sequences of each set from ``world``."""
        if not isinstance(world, BurstyClasses):
            raise InputError(f"the classification probe needs a bursty-classes world; got {type(world).__name__}")
        tokens, answers, context, own, chance = {}, {}, {}, {}, {}
        label_mass = np.bincount(world.class_labels - world.n_features, weights=world.class_probs,
                                 minlength=world.labels)  # (labels,) Zipf mass of each label
        for s in self.sets:
            if s == "no-support":
                batch = world.no_support(rng, self.n_prompts)
                chance[s] = float(label_mass.max())
            else:
                batch = world.fewshot(rng, self.n_prompts, "holdout" if s == "fewshot-holdout" else "trained")
                chance[s] = 1.0 / world.ways
            tokens[s] = batch.tokens[:, :-1]  # (n, pos - 1): stop before the query's label
            answers[s] = batch.info["query_label"]
            context[s] = batch.info["labels"][:, :-1]  # (n, P)
            qc = batch.info["query_class"]
            own[s] = np.where(qc < world.n_classes, world.class_labels[np.minimum(qc, world.n_classes - 1)], -1)
        return ClassificationPrompts(tokens, answers, context, own, chance,
                                     (world.n_features, world.vocab_size))

    def __call__(self, model: nn.Module, prompts: ClassificationPrompts) -> ProbeResult:
        missing = [s for s in self.sets if s not in prompts.tokens]
        if missing:
            raise InputError(f"these prompts lack the set(s) {missing}; make them with the prompts() of a probe "
                             "whose sets cover this one's")
        lo, hi = prompts.label_range
        vocab = vocab_size_of(model)
        if vocab is not None and vocab < hi:
            raise InputError(f"the classification probe needs a model over the world's {hi} tokens; this model "
                             f"has a vocabulary of {vocab}")
        rows = []
        for s in self.sets:
            toks = prompts.tokens[s][: self.n_prompts]
            logits = np.concatenate([self._label_logits(model, toks[sl], lo, hi)
                                     for sl in batched(len(toks), self.batch_size)])  # (n, labels)
            pred = lo + logits.argmax(axis=1)  # (n,) ties go to the lowest label
            ans, ctx = prompts.answers[s][: len(toks)], prompts.context_labels[s][: len(toks)]
            in_ctx = np.zeros(logits.shape, dtype=bool)  # (n, labels): labels present in the context
            np.put_along_axis(in_ctx, ctx - lo, True, axis=1)
            closed = lo + np.where(in_ctx, logits, -np.inf).argmax(axis=1)
            values = {"accuracy": (pred == ans).mean(), "context_accuracy": (closed == ans).mean(),
                      "from_context": in_ctx[np.arange(len(pred)), pred - lo].mean(), "chance": prompts.chance[s]}
            if s == "fewshot-trained":
                values["own_label"] = (pred == prompts.own_labels[s][: len(toks)]).mean()
            rows += [Row(self.name, m, float(v), label=s) for m, v in values.items()]
        return ProbeResult(rows)

    @staticmethod
    @torch.no_grad()
    def _label_logits(model: nn.Module, tokens: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The model's logits of the label tokens after the last token, (batch, hi - lo)."""
        logits = model(input_ids=as_tokens(model, tokens)).logits[:, -1, lo:hi]  # (batch, labels)
        return logits.float().cpu().numpy()
