"""Accuracy on natural tasks: greedy decoding and exact match, optionally with a patch.

For a prompt ending at the query's ``->``, the model continues greedily (argmax token,
one at a time); the continuation up to its first newline, stripped of surrounding
spaces, is the answer, and the prompt counts as right when it equals the expected
answer exactly:

    acc_t = |{ j : task_j = t, strip(first_line(greedy_j)) = answer_j }| / |{ j : task_j = t }|

Han et al., ICML 2025; spec ``task_vectors.md`` ("accuracy by greedy decoding and exact
match").

Decoding re-runs the whole sequence at each new token (no key/value cache), so an edit
at a fixed position (a task vector at the query's ``->``) applies identically at every
step. Prompts are right-padded; each row writes its next token at its own length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.models.capture import forward_logits
from iclab.models.hooks import HookFn
from iclab.models.patch import patch
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.probes.task_text import EncodedPrompts, answer_token_count

#: edits for a chunk of prompts: (prompt indices (chunk,), query positions (chunk,) on the
#: model's device) -> activation name -> hook function
EditsFor = Callable[[np.ndarray, torch.Tensor], dict[str, HookFn]]


@torch.no_grad()
def greedy_continuations(model: nn.Module, enc: EncodedPrompts, max_new_tokens: int,
                         edits_for: EditsFor | None = None, batch_size: int = 16) -> list[str]:
    """The greedy continuation of each prompt, decoded, up to ``max_new_tokens`` tokens.

    Parameters
    ----------
    model : PreTrainedModel
    enc : EncodedPrompts
    max_new_tokens : int
        Tokens generated per prompt (a chunk stops early once every row has a newline).
    edits_for : callable, optional
        Edits (see :data:`EditsFor`) applied at every decoding step.
    batch_size : int, default 16

    Returns
    -------
    list of str
        The decoded new tokens of each prompt, in order.
    """
    device = model_device(model)
    tok = enc.tokenizer
    texts: list[str] = [""] * len(enc)
    for sl in batched(len(enc), batch_size):
        rows = np.arange(sl.start, sl.stop)
        n = len(rows)
        lengths = torch.as_tensor(enc.lengths[rows], device=device)  # (chunk,)
        width = enc.ids.shape[1] + max_new_tokens
        ids = torch.full((n, width), enc.pad_id, dtype=torch.long, device=device)  # (chunk, width)
        ids[:, : enc.ids.shape[1]] = enc.ids[sl].to(device)
        edits = edits_for(rows, lengths - 1) if edits_for is not None else None
        new = torch.zeros((n, max_new_tokens), dtype=torch.long)
        arange = torch.arange(n, device=device)
        for t in range(max_new_tokens):
            end = int(lengths.max())
            inputs = ids[:, :end]
            logits = patch(model, inputs, edits) if edits else forward_logits(model, inputs)  # (chunk, end, vocab)
            nxt = logits[arange, lengths - 1].argmax(-1)  # (chunk,)
            ids[arange, lengths] = nxt
            lengths = lengths + 1
            new[:, t] = nxt.cpu()
            decoded = [tok.decode(new[j, : t + 1].tolist()) for j in range(n)]
            if all("\n" in d for d in decoded):
                break
        for j, row in enumerate(rows):
            texts[row] = decoded[j]
    return texts


def exact_match(continuation: str, answer: str) -> bool:
    """Whether the continuation's first line, stripped, equals ``answer``."""
    return continuation.split("\n", 1)[0].strip() == answer.strip()


def correct(model: nn.Module, enc: EncodedPrompts, max_new_tokens: int | None = None,
            edits_for: EditsFor | None = None, batch_size: int = 16) -> tuple[np.ndarray, list[str]]:
    """Exact-match correctness of each prompt, (n,) bool, and the continuations.

    ``max_new_tokens`` None means one more than the longest answer's token count.
    """
    if max_new_tokens is None:
        max_new_tokens = answer_token_count(enc.tokenizer, enc.prompts) + 1
    texts = greedy_continuations(model, enc, max_new_tokens, edits_for, batch_size)
    return np.array([exact_match(t, a) for t, a in zip(texts, enc.answers)]), texts


def accuracy_rows(ok: np.ndarray, tasks: np.ndarray, metric: str = "accuracy", probe: str = "accuracy",
                  **tags) -> list[Row]:
    """One row per task: the share of its prompts that are right."""
    return [Row(probe, metric, float(ok[tasks == t].mean()), label=str(t), **tags) for t in dict.fromkeys(tasks)]


class TaskAccuracy(Probe):
    """Exact-match accuracy of greedy decoding, per task (module docstring).

    Parameters
    ----------
    max_new_tokens : int or None, default None
        None: one more than the longest answer's token count.
    batch_size : int, default 16

    Call with ``(model, enc)``, ``enc`` an :class:`EncodedPrompts`. Rows
    ``(probe="accuracy", metric="accuracy", label=task)``; arrays ``"correct"`` (n,).
    """

    name: ClassVar[str] = "accuracy"
    max_new_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)

    def __call__(self, model: nn.Module, enc: EncodedPrompts) -> ProbeResult:
        ok, _ = correct(model, enc, self.max_new_tokens, None, self.batch_size)
        return ProbeResult(accuracy_rows(ok, enc.tasks), {"correct": ok})
