"""Classification by the label tokens' logits at the answer position.

For a prompt whose last token precedes the answer (text prompts end at the label prefix,
``"...\\nSentiment:"``), with candidate labels c_1 .. c_C, each one token t(c_j), the
prediction is

    ŷ = argmax_j  logit(t(c_j) | prompt)

(the same argmax as over the candidates' probabilities: softmax is monotone), and the
accuracy against a target index y per prompt is the share of prompts with ŷ = y. Min et
al., "Rethinking the Role of Demonstrations", EMNLP 2022, and Wei et al., "Larger language
models do in-context learning differently", 2023, score classification this way (spec
``mechanisms.md``, label-semantics; also demo-selection).

Every label must be **one token** where it follows the label prefix: a label the
tokenizer splits is refused by :func:`label_token_ids` with an error naming it and its
pieces, rather than scored by its first token, which two labels can share (" positive" and
" posh" both start with " pos" for some vocabularies) and which favours labels whose first
piece is common. Choose one-token labels (most English words are one token after a space).

Prompts are right-padded: a causal model's logits at a prompt's last real token do not
depend on the padding after it, so no attention mask is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import InputError
from iclab.limits import MAX_BATCH
from iclab.models.capture import forward_logits
from iclab.models.load import context_limits
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.result import ProbeResult
from iclab.rows import Row


@dataclass(frozen=True)
class LabelPrompts:
    """Prompts to classify, with their candidate label tokens and targets.

    Attributes
    ----------
    ids : LongTensor of shape (n, pos)
        Token ids, right-padded.
    lengths : ndarray of shape (n,), int
        Real tokens of each prompt; the answer is predicted at ``lengths - 1``.
    candidates : ndarray of shape (n, C), int
        Token id of each candidate label (-1 where a prompt has fewer than C candidates).
    targets : dict of str to ndarray of shape (n,), int
        For each metric (``"accuracy"``, ``"context_accuracy"``), the index in ``candidates``
        of the right label of each prompt; -1 leaves the prompt out of that metric.
    groups : ndarray of shape (n,), str
        The row label each prompt counts toward (a condition, ``"sentiment/flipped"``).
    """

    ids: torch.Tensor
    lengths: np.ndarray
    candidates: np.ndarray
    targets: dict[str, np.ndarray]
    groups: np.ndarray
    texts: list[str] = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.lengths)

    def __post_init__(self):
        n = len(self.lengths)
        assert self.ids.shape[0] == n and self.candidates.shape[0] == n and len(self.groups) == n
        assert all(t.shape == (n,) for t in self.targets.values())


def label_token_ids(tokenizer, labels: Sequence[str], prefix: str) -> list[int]:
    """The one token of each label where it follows ``prefix`` and a space (``"Sentiment:"`` then
    ``" positive"``), read as the tokens that ``prefix + " " + label`` adds to ``prefix``.

    Raises
    ------
    InputError
        A label that is more than one token there (naming it and its pieces), that changes
        how the prefix is tokenised, or two labels with the same token.
    """
    base = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    out = []
    for label in labels:
        full = tokenizer(prefix + " " + label, add_special_tokens=False)["input_ids"]
        added = full[len(base):]
        if full[: len(base)] != base or len(added) != 1:
            pieces = tokenizer.convert_ids_to_tokens(added if full[: len(base)] == base else full)
            raise InputError(f"label {label!r} is not one token for this tokenizer ({type(tokenizer).__name__}) after "
                             f"{prefix!r}: it reads as {pieces}; the label probes score one token per label, so "
                             "choose labels that are single tokens (e.g. common English words)")
        out.append(int(added[0]))
    if len(set(out)) != len(out):
        same = [lab for lab, t in zip(labels, out) if out.count(t) > 1]
        raise InputError(f"labels {same} are the same token for this tokenizer; choose distinct labels")
    return out


def encode_texts(tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
    """Token ids of ``texts`` (with the tokenizer's leading special tokens, none appended after the
    text), right-padded: ``(ids (n, pos), lengths (n,))``."""
    if not texts:
        raise InputError("no prompts to encode")
    seqs = []
    trailing = {getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "sep_token_id", None)} - {None}
    for t in texts:
        ids = list(tokenizer(t)["input_ids"])
        while len(ids) > 1 and ids[-1] in trailing:  # the answer goes right after the text
            ids.pop()
        seqs.append(ids)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    pad = next((v for v in (getattr(tokenizer, a, None) for a in ("pad_token_id", "eos_token_id")) if v is not None),
               0)
    ids = torch.full((len(seqs), int(lengths.max())), int(pad), dtype=torch.long)  # (n, pos)
    for j, s in enumerate(seqs):
        ids[j, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


@torch.no_grad()
def candidate_logits(model: nn.Module, prompts: LabelPrompts, batch_size: int = 16) -> np.ndarray:
    """The logit of each candidate label at each prompt's answer position, (n, C) float64;
    ``-inf`` where a prompt has no candidate (``candidates == -1``)."""
    _, maximum = context_limits(model)
    longest = int(prompts.lengths.max())
    if maximum is not None and longest > maximum:
        raise InputError(f"the longest prompt is {longest} tokens, more than the model's {maximum} positions; "
                         "use fewer demonstrations (shots) or shorter texts")
    device = model_device(model)
    out = np.full(prompts.candidates.shape, -np.inf)
    order = np.argsort(-prompts.lengths, kind="stable")  # similar lengths together: less padding
    for sl in batched(len(order), batch_size):
        rows = order[sl]
        width = int(prompts.lengths[rows].max())
        ids = prompts.ids[torch.as_tensor(rows), :width].to(device)  # (chunk, width)
        logits = forward_logits(model, ids)  # (chunk, width, vocab)
        last = torch.as_tensor(prompts.lengths[rows] - 1, device=device)
        at = logits[torch.arange(len(rows), device=device), last].float().cpu()  # (chunk, vocab)
        cand = torch.as_tensor(prompts.candidates[rows])  # (chunk, C)
        picked = at.gather(1, cand.clamp(min=0)).double().numpy()  # (chunk, C)
        out[rows] = np.where(cand.numpy() >= 0, picked, -np.inf)
    return out


def accuracy_rows(predicted: np.ndarray, prompts: LabelPrompts, probe: str) -> list[Row]:
    """One row per (metric, group): the share of the group's scored prompts predicted right."""
    rows = []
    for metric, target in prompts.targets.items():
        for g in dict.fromkeys(prompts.groups.tolist()):
            keep = (prompts.groups == g) & (target >= 0)
            if keep.any():
                rows.append(Row(probe, metric, float((predicted[keep] == target[keep]).mean()), label=str(g)))
    return rows


class LabelScoring(Probe):
    """Accuracy of the argmax over the candidate labels' logits (module docstring).

    Parameters
    ----------
    batch_size : int, default 16

    Call with ``(model, prompts)``, ``prompts`` a :class:`LabelPrompts`. Rows
    ``(probe="label_scoring", metric=<each target>, label=<group>)``; arrays ``"predicted"``
    (n,) and ``"scores"`` (n, C).
    """

    name: ClassVar[str] = "label_scoring"
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)

    def __call__(self, model: nn.Module, prompts: LabelPrompts) -> ProbeResult:
        scores = candidate_logits(model, prompts, self.batch_size)
        predicted = scores.argmax(1)
        return ProbeResult(accuracy_rows(predicted, prompts, self.name), {"predicted": predicted, "scores": scores})
