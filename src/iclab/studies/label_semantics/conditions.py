"""The demonstration variants of the label-semantics study, as text prompts.

For a query x with gold class y and k demonstrations (x_i, y_i) drawn from the rest of the
set (uniformly, without replacement; the same draw for every condition, so conditions are
compared on the same inputs), with C classes and label words L_0 … L_{C-1}:

==============  =============================================  ======================  ==============
condition       demonstrations                                 candidates              target
==============  =============================================  ======================  ==============
zero-shot       none                                           L                       y
gold            (x_i, L_{y_i})                                 L                       y
random          (x_i, L_{r_i}), r_i uniform over classes       L                       y
flipped         (x_i, L_{(y_i + 1) mod C})                     L                       y; in context: y + 1
unrelated       (x_i, U_{y_i}), U the unrelated words          U                       y (U_y)
no-labels       x_i alone                                      L                       y
ood-inputs      (o_i, L_{r_i}), o_i neutral sentences          L                       y
==============  =============================================  ======================  ==============

"random", "no-labels" and "ood-inputs" are Min et al., "Rethinking the Role of
Demonstrations: What Makes In-Context Learning Work?" (EMNLP 2022; their out-of-distribution
inputs are random corpus sentences, with random labels); "flipped" and "unrelated"
(semantically unrelated labels, SUL: "foo"/"bar") are Wei et al., "Larger language models
do in-context learning differently" (2023). With two classes flipping swaps the labels; with
more it moves each class to the next label. A flipped prompt is scored twice: against the
gold label (``accuracy``; below 1/C when a model follows the flipped map) and against the
label the flipped map gives (``context_accuracy``).
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from iclab.studies.labelled_data import Case
from iclab.tasks.labelled import SEPARATOR, LabelledSet, format_example, format_input

ZERO_SHOT = "zero-shot"
#: the variants with demonstrations, in report order
CONDITIONS = ("gold", "random", "flipped", "unrelated", "no-labels", "ood-inputs")


def group_label(task: str, condition: str) -> str:
    return f"{task}/{condition}"


def split_group(label: str) -> tuple[str, str]:
    task, _, condition = label.rpartition("/")
    return task, condition


def flip(c: np.ndarray | int, n_classes: int):
    return (np.asarray(c) + 1) % n_classes


def queries_of(s: LabelledSet, rng: np.random.Generator, n: int) -> np.ndarray:
    """Indices of ``n`` queries (all of the set, shuffled, when it has fewer)."""
    return rng.permutation(len(s))[: min(n, len(s))]


def _prompt(s: LabelledSet, demos: Sequence[str], query: str) -> str:
    return SEPARATOR.join([*demos, format_example(s, query, None)])


def cases(s: LabelledSet, conditions: Sequence[str], k: int, queries: np.ndarray, n_draws: int,
          rng: np.random.Generator, unrelated: Sequence[str], ood: Sequence[str]) -> list[Case]:
    """Every (query, draw, condition) prompt at ``k`` demonstrations (see the module docstring)."""
    C, L = s.n_classes, s.label_names
    U = tuple(unrelated[:C])
    out = []
    for q in queries:
        y = s.labels[q]
        pool = np.array([i for i in range(len(s)) if i != q])
        for _ in range(n_draws):
            idx = rng.choice(pool, size=k, replace=False)  # (k,)
            ys = np.array([s.labels[i] for i in idx])
            r = rng.integers(0, C, size=k)  # random labels
            o = rng.choice(len(ood), size=k, replace=len(ood) < k)  # out-of-distribution inputs
            texts = [s.texts[i] for i in idx]
            for cond in conditions:
                cand, targets = L, {"accuracy": y}
                if cond == "gold":
                    demos = [format_example(s, t, L[c]) for t, c in zip(texts, ys)]
                elif cond == "random":
                    demos = [format_example(s, t, L[c]) for t, c in zip(texts, r)]
                elif cond == "flipped":
                    demos = [format_example(s, t, L[c]) for t, c in zip(texts, flip(ys, C))]
                    targets = {"accuracy": y, "context_accuracy": int(flip(y, C))}
                elif cond == "unrelated":
                    demos = [format_example(s, t, U[c]) for t, c in zip(texts, ys)]
                    cand = U
                elif cond == "no-labels":
                    demos = [format_input(s, t) for t in texts]
                elif cond == "ood-inputs":
                    demos = [format_example(s, ood[j], L[c]) for j, c in zip(o, r)]
                else:
                    raise ValueError(f"unknown condition {cond!r}")
                out.append(Case(_prompt(s, demos, s.texts[q]), tuple(cand), targets, group_label(s.name, cond)))
    return out


def zero_shot_cases(s: LabelledSet, queries: np.ndarray) -> list[Case]:
    return [Case(_prompt(s, [], s.texts[q]), s.label_names, {"accuracy": s.labels[q]}, group_label(s.name, ZERO_SHOT))
            for q in queries]
