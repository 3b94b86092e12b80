"""Task vectors: read the task from demonstrations, write it into a query pass.

A task vector is a mean hidden state (``resid_post`` of layer ``L``) over demonstration
prompts of one task, at the position after each ``x`` (the token holding each ``->``):

    h_t^L = (1 / |A_t|) Σ_{(j, p) ∈ A_t} resid_post^L[j, p]

with ``A_t`` every arrow of every demonstration prompt of task ``t`` (``where="arrows"``,
Han et al.), or only the last arrow (``where="query"``, Hendel et al. 2023). In the query
pass (zero- or few-shot) the state at the query's ``->`` at layer ``L`` is replaced by
``h_t^L`` (Hendel et al.) or has it added (``mode="add"``, Todd et al. 2024's function
vectors), and accuracy is compared with the unpatched run: the true task's vector is the
positive condition, the Null task's the negative one.

Han, Song, Gore and Agrawal, ICML 2025 (activation patching, encoder–decoder view);
Hendel, Geva and Globerson 2023, "In-Context Learning Creates Task Vectors"; Todd et al.
2024, "Function Vectors in Large Language Models"; spec ``task_vectors.md``.

Rows (``probe="patching"``, ``layer=L``, ``label`` = the query's task): ``accuracy_clean``,
``accuracy_task``, ``accuracy_null``, ``delta_task = accuracy_task - accuracy_clean`` and
``delta_null = accuracy_null - accuracy_clean``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import InputError
from iclab.models.names import StreamSite, act_name
from iclab.models.patch import Add, Replace
from iclab.probes.base import Probe
from iclab.probes.decodability import gather_hidden
from iclab.probes.result import ProbeResult
from iclab.rows import Row
from iclab.probes.task_accuracy import EditsFor, correct
from iclab.probes.task_text import EncodedPrompts


def task_vectors(model: nn.Module, enc: EncodedPrompts, layers: Sequence[int],
                 where: Literal["arrows", "query"] = "arrows", site: StreamSite = "resid_post",
                 batch_size: int = 16) -> dict[str, np.ndarray]:
    """The task vector of every task among ``enc``'s prompts at each of ``layers``.

    Parameters
    ----------
    model : PreTrainedModel
    enc : EncodedPrompts
        Demonstration prompts, any mix of tasks.
    layers : sequence of int
    where : {"arrows", "query"}, default "arrows"
        Average over every ``->`` of each prompt, or only over its last one.
    site : default "resid_post"
    batch_size : int, default 16

    Returns
    -------
    dict of str to ndarray of shape (layers, d_model)
        Task name -> ``h_t^L`` for each layer in ``layers``.
    """
    pairs = [(j, p) for j in range(len(enc)) for p in (enc.arrows[j] if where == "arrows" else enc.arrows[j][-1:])]
    index = np.array(pairs, dtype=np.int64)  # (m, 2)
    H = gather_hidden(model, enc.ids, index, layers, site, batch_size)  # (layers, m, d_model)
    tasks = enc.tasks[index[:, 0]]  # (m,)
    return {str(t): H[:, tasks == t].mean(axis=1) for t in dict.fromkeys(enc.tasks)}


def patch_edits(layer: int, vectors: np.ndarray, mode: Literal["replace", "add"] = "replace",
                scale: float = 1.0) -> EditsFor:
    """Edits that write ``vectors[j]`` (n, d_model) at prompt ``j``'s query position at ``layer``."""
    name = act_name("resid_post", layer)

    def edits_for(rows: np.ndarray, query_pos: torch.Tensor):
        value = torch.as_tensor(vectors[rows])  # (chunk, d_model)
        if mode == "replace":
            return {name: Replace(value, pos=query_pos)}
        return {name: Add(value, pos=query_pos, scale=scale)}
    return edits_for


@dataclass(frozen=True)
class PatchingPrompts:
    """Query prompts and the task vectors to write into them.

    Attributes
    ----------
    queries : EncodedPrompts
        Query prompts (zero- or few-shot) of the tasks to score; none of the Null task.
    vectors : mapping of str to ndarray of shape (d_model,)
        Task vector of each task at the patched layer, the Null task's included.
    null_task : str
        Name of the Null task in ``vectors`` (the negative condition).
    """

    queries: EncodedPrompts
    vectors: Mapping[str, np.ndarray]
    null_task: str


class TaskVectorPatching(Probe):
    """Accuracy with the true task's vector, the Null vector, and no patch (module docstring).

    Parameters
    ----------
    layer : int
        Layer ``L`` whose ``resid_post`` is patched at the query's ``->``.
    mode : {"replace", "add"}, default "replace"
    scale : float, default 1.0
        Multiplies the vector when ``mode="add"``.
    max_new_tokens : int or None, default None
    batch_size : int, default 16

    Call with ``(model, prompts)``, ``prompts`` a :class:`PatchingPrompts`. Arrays:
    ``"correct_clean"``, ``"correct_task"``, ``"correct_null"``, each (n,) bool.
    """

    name: ClassVar[str] = "patching"
    layer: int = Field(ge=0)
    mode: Literal["replace", "add"] = "replace"
    scale: float = 1.0
    max_new_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)

    def __call__(self, model: nn.Module, prompts: PatchingPrompts) -> ProbeResult:
        enc = prompts.queries
        tasks = enc.tasks
        missing = sorted({*tasks, prompts.null_task} - set(prompts.vectors))
        if missing:
            raise InputError(f"no task vector for {', '.join(missing)}; have {', '.join(prompts.vectors)}")
        positive = np.stack([prompts.vectors[t] for t in tasks])  # (n, d_model)
        negative = np.repeat(prompts.vectors[prompts.null_task][None], len(tasks), axis=0)  # (n, d_model)
        run = dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        clean, _ = correct(model, enc, edits_for=None, **run)
        with_task, _ = correct(model, enc, edits_for=patch_edits(self.layer, positive, self.mode, self.scale), **run)
        with_null, _ = correct(model, enc, edits_for=patch_edits(self.layer, negative, self.mode, self.scale), **run)
        rows = []
        for t in dict.fromkeys(tasks):
            m = tasks == t
            a0, a1, a2 = clean[m].mean(), with_task[m].mean(), with_null[m].mean()
            rows += [Row(self.name, metric, v, layer=self.layer, label=str(t)) for metric, v in
                     [("accuracy_clean", a0), ("accuracy_task", a1), ("accuracy_null", a2),
                      ("delta_task", a1 - a0), ("delta_null", a2 - a0)]]
        return ProbeResult(rows, {"correct_clean": clean, "correct_task": with_task, "correct_null": with_null})
