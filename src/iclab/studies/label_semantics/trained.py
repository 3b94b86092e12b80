"""The label-semantics conditions as token prompts of the label-map world (a model trained here).

The same variants as :mod:`~iclab.studies.label_semantics.conditions`, over the world's
tokens (:class:`~iclab.worlds.label_map.LabelMapWorld`): a prompt is ``x_1 y_1 … x_k y_k x``
and the label is predicted at the query x. Demonstration inputs are pretraining inputs other
than the query (held-out inputs for ``ood-inputs``); labels are S_{c(x_i)} (gold), S_{r_i}
(random), S_{c(x_i)+1 mod C} (flipped), U_{c(x_i)} (unrelated); ``no-labels`` is ``x_1 … x_k x``;
zero-shot is the query alone. Candidates are S (U for unrelated); targets as in the text study.
"""

from __future__ import annotations

import numpy as np
import torch

from iclab.probes.label_scoring import LabelPrompts
from iclab.studies.label_semantics.conditions import ZERO_SHOT, flip, group_label
from iclab.worlds.label_map import LabelMapWorld

#: the task name of the trained part's rows (``"label-map/<condition>"``)
TASK = "label-map"


def condition_tokens(world: LabelMapWorld, condition: str, k: int, n: int, rng: np.random.Generator):
    """``n`` prompts of one condition at ``k`` demonstrations: token ids (n, T), candidate tokens
    (n, C), targets {metric: (n,)}."""
    C, classes = world.n_classes, world.classes()
    q = rng.integers(0, world.n_inputs, size=n)  # (n,)
    y = classes[q]
    if condition == ZERO_SHOT:
        return q[:, None], np.broadcast_to(world.label_token(np.arange(C)), (n, C)), {"accuracy": y}
    # k inputs per prompt other than its query: draw from n_inputs - 1 and skip the query
    xs = rng.integers(0, world.n_inputs - 1, size=(n, k))  # (n, k)
    xs = xs + (xs >= q[:, None])
    r = rng.integers(0, C, size=(n, k))
    cls = classes[xs]
    candidates = world.label_token(np.arange(C))
    targets = {"accuracy": y}
    if condition == "gold":
        labels = world.label_token(cls)
    elif condition == "random":
        labels = world.label_token(r)
    elif condition == "flipped":
        labels = world.label_token(flip(cls, C))
        targets = {"accuracy": y, "context_accuracy": flip(y, C)}
    elif condition == "unrelated":
        labels = world.unrelated_token(cls)
        candidates = world.unrelated_token(np.arange(C))
    elif condition == "ood-inputs":
        xs = world.n_inputs + rng.integers(0, world.n_ood_inputs, size=(n, k))
        labels = world.label_token(r)
    elif condition == "no-labels":
        labels = None
    else:
        raise ValueError(f"unknown condition {condition!r}")
    demos = xs if labels is None else np.stack([xs, labels], axis=2).reshape(n, 2 * k)  # (n, k) or (n, 2k)
    ids = np.concatenate([demos, q[:, None]], axis=1)
    return ids, np.broadcast_to(candidates, (n, C)), targets


def trained_prompts(world: LabelMapWorld, conditions: list[str], shots: list[int], n: int,
                    rng: np.random.Generator) -> dict[int, LabelPrompts]:
    """The prompts of every condition at each k (zero-shot under k = 0), one LabelPrompts per k."""
    out = {}
    for k in sorted({0, *shots}):
        conds = [ZERO_SHOT] if k == 0 else list(conditions)
        parts = [(c, *condition_tokens(world, c, k, n, rng)) for c in conds]
        width = max(p[1].shape[1] for p in parts)
        ids = np.zeros((n * len(parts), width), dtype=np.int64)  # (prompts, T), right-padded
        lengths, cands, groups = [], [], []
        targets = {m: [] for m in ("accuracy", "context_accuracy")}
        for j, (c, x, cand, tg) in enumerate(parts):
            ids[j * n:(j + 1) * n, : x.shape[1]] = x
            lengths.append(np.full(n, x.shape[1]))
            cands.append(cand)
            groups += [group_label(TASK, c)] * n
            for m in targets:
                targets[m].append(np.asarray(tg[m]) if m in tg else np.full(n, -1))
        targets = {m: np.concatenate(v).astype(np.int64) for m, v in targets.items()}
        if (targets["context_accuracy"] < 0).all():
            del targets["context_accuracy"]
        out[k] = LabelPrompts(torch.from_numpy(ids), np.concatenate(lengths), np.concatenate(cands).astype(np.int64),
                              targets, np.array(groups))
    return out
