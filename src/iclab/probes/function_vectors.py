"""Function vectors: the heads that carry a task from in-context examples, and their sum.

Todd, Li, Sharma, Mueller, Wallace and Bau 2024, "Function Vectors in Large Language
Models" (ICLR; code ``ericwtodd/function_vectors``), in iclab's vocabulary:

1. **Mean head outputs.** Over clean ICL prompts of one task, each head's ``z`` at the
   prompt's last token (the one that predicts the answer), averaged:
   ``zbar_{l,h} = mean_j z_{l,h}(p_j)[last]``, and its write to the residual stream
   ``rbar_{l,h} = zbar_{l,h} W_O[l,h]`` (the mean of ``attn.hook_result``, without the
   output bias, which belongs to no head).
2. **Average indirect effect.** On prompts whose demonstrations have their labels
   shuffled (the task is no longer in them), replace one head's ``z`` at the last token by
   ``zbar_{l,h}`` and measure the gain in the probability of the query's correct answer:
   ``CIE_{l,h}(p) = P(answer | p, z_{l,h} := zbar_{l,h}) - P(answer | p)``;
   ``AIE_{l,h}`` is its mean over the shuffled prompts.
3. **Function vector.** The sum of the mean outputs of the ``n_top_heads`` heads with the
   largest AIE: ``v = sum_{(l,h) in top} rbar_{l,h}``.
4. **Its effect.** Added to the residual stream (``resid_post`` of layer ``layer``, the
   paper's ``L / 3`` by default) at the last token of zero-shot prompts (the query alone)
   and of the shuffled prompts, does it make the model answer?

Differences from the paper's code, kept on purpose: prompts are token ids given by the
caller (so any world or text task works), the read position is each prompt's own last
token (no token-class alignment), and a head's output leaves out the output bias (the
paper's ``out_proj(x)`` adds GPT-2's and Pythia's bias once per head).

Rows (``probe="function_vectors"``): ``aie`` (layer, head); with ``layer`` = the layer the
vector is added at, ``zero_shot_prob`` / ``zero_shot_top1`` (``label="clean"``, no vector,
and ``label="fv"``, with it) and ``shuffled_prob`` / ``shuffled_top1`` (same labels).
Arrays: ``aie`` (layer, head), ``function_vector`` (d_model,), ``top_heads`` (k, 2).
:func:`task_prompts` builds the three prompt sets from a natural task and a tokenizer.

Example::

    from iclab.probes.function_vectors import FunctionVectors, FunctionVectorPrompts
    fv = FunctionVectors(n_top_heads=2)(model, FunctionVectorPrompts(clean, shuffled, shuffled_answer,
                                                                      zero_shot, zero_shot_answer))
    fv.arrays["aie"]                  # (layer, head)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.errors import InputError
from iclab.models.capture import capture, forward_logits
from iclab.models.hooks import anatomy, hooks
from iclab.models.names import act_name
from iclab.models.patch import Add
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.result import ProbeResult
from iclab.rows import Row


def _ids(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.long)
    return t[None] if t.ndim == 1 else t


def _last(ids: torch.Tensor, pos) -> torch.Tensor:
    if pos is None:
        return torch.full((ids.shape[0],), ids.shape[1] - 1, dtype=torch.long)
    p = torch.as_tensor(np.asarray(pos), dtype=torch.long).reshape(-1)
    if p.shape != (ids.shape[0],) or int(p.min()) < 0 or int(p.max()) >= ids.shape[1]:
        raise InputError(f"read positions must be one per prompt within 0..{ids.shape[1] - 1}, got {p.tolist()}")
    return p


@dataclass(frozen=True)
class FunctionVectorPrompts:
    """The three sets of prompts of one task, as token ids (right-padded if ragged).

    Attributes
    ----------
    clean : LongTensor (n, pos)
        ICL prompts with correct labels, ending where the answer is predicted.
    shuffled : LongTensor (m, pos)
        ICL prompts whose demonstrations' labels are shuffled.
    shuffled_answer : LongTensor (m,)
        The first token of each shuffled prompt's correct answer.
    zero_shot : LongTensor (k, pos)
        The query alone.
    zero_shot_answer : LongTensor (k,)
    clean_pos, shuffled_pos, zero_shot_pos : LongTensor (n,), (m,), (k,)
        Each prompt's last real token (default: the last column).
    """

    clean: torch.Tensor
    shuffled: torch.Tensor
    shuffled_answer: torch.Tensor
    zero_shot: torch.Tensor
    zero_shot_answer: torch.Tensor
    clean_pos: torch.Tensor | None = None
    shuffled_pos: torch.Tensor | None = None
    zero_shot_pos: torch.Tensor | None = None

    def __post_init__(self):
        for name in ("clean", "shuffled", "zero_shot"):
            ids = _ids(getattr(self, name))
            object.__setattr__(self, name, ids)
            object.__setattr__(self, f"{name}_pos", _last(ids, getattr(self, f"{name}_pos")))
        for name, ids in (("shuffled_answer", self.shuffled), ("zero_shot_answer", self.zero_shot)):
            ans = torch.as_tensor(np.asarray(getattr(self, name)), dtype=torch.long).reshape(-1)
            if ans.shape != (ids.shape[0],):
                raise InputError(f"{name} needs one token per prompt ({ids.shape[0]}), got {ans.numel()}")
            object.__setattr__(self, name, ans)


def task_prompts(tokenizer, task, rng: np.random.Generator, n: int, k: int = 10) -> FunctionVectorPrompts:
    """The three prompt sets of a natural task (:mod:`iclab.tasks`), tokenised with ``tokenizer``.

    ``n`` clean k-shot prompts; ``n`` k-shot prompts whose demonstrations' outputs are
    permuted among themselves (the paper's shuffled labels; the query's answer is unchanged);
    ``n`` zero-shot prompts (the query and its arrow alone). The answer token is the first
    token of the continuation, ``" " + answer``. Prompts are right-padded; each set reads
    at its own prompts' last token.
    """
    from iclab.probes.task_text import encode_prompts
    from iclab.tasks.prompts import Prompt, build_prompts, format_prompt

    def shuffled(p: Prompt) -> Prompt:
        outs = [d.output for d in p.demonstrations]
        order = rng.permutation(len(outs))
        demos = tuple(type(d)(d.input, outs[i]) for d, i in zip(p.demonstrations, order))
        text, arrows = format_prompt(demos, p.query)
        return Prompt(text, p.answer, p.task, demos, p.query, arrows)

    def first_token(answer: str) -> int:
        return int(tokenizer(" " + answer, add_special_tokens=False)["input_ids"][0])

    sets = {"clean": build_prompts(task, rng, n, k), "shuffled": [shuffled(p) for p in build_prompts(task, rng, n, k)],
            "zero_shot": build_prompts(task, rng, n, 0)}
    enc = {name: encode_prompts(tokenizer, ps) for name, ps in sets.items()}
    return FunctionVectorPrompts(
        enc["clean"].ids, enc["shuffled"].ids, [first_token(a) for a in enc["shuffled"].answers],
        enc["zero_shot"].ids, [first_token(a) for a in enc["zero_shot"].answers],
        clean_pos=enc["clean"].query_positions, shuffled_pos=enc["shuffled"].query_positions,
        zero_shot_pos=enc["zero_shot"].query_positions)


@torch.no_grad()
def mean_head_outputs(model: nn.Module, ids: torch.Tensor, pos: torch.Tensor, batch_size: int = 16
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each head's mean ``z`` and mean ``result`` at the read positions: (layer, head, d_head)
    and (layer, head, d_model), float32 on the model's device."""
    a = anatomy(model)
    dev = model_device(model)
    names = [act_name(s, l) for l in range(a.n_layers) for s in ("z", "result")]
    z_sum = r_sum = None
    for sl in batched(ids.shape[0], batch_size):
        cache = capture(model, ids[sl].to(dev), names)
        rows, p = torch.arange(sl.stop - sl.start, device=dev), pos[sl].to(dev)
        z = torch.stack([cache[act_name("z", l)][rows, p].float().sum(0) for l in range(a.n_layers)])  # (L, H, d_head)
        r = torch.stack([cache[act_name("result", l)][rows, p].float().sum(0) for l in range(a.n_layers)])  # (L, H, d)
        z_sum, r_sum = (z, r) if z_sum is None else (z_sum + z, r_sum + r)
    return z_sum / ids.shape[0], r_sum / ids.shape[0]


def _answer_prob(logits: torch.Tensor, pos: torch.Tensor, answer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(logits.shape[0], device=logits.device)
    at = logits[rows, pos.to(logits.device)].float()  # (batch, vocab)
    ans = answer.to(logits.device)
    return at.softmax(-1)[rows, ans], (at.argmax(-1) == ans).float()  # (batch,), (batch,)


@torch.no_grad()
def average_indirect_effect(model: nn.Module, ids: torch.Tensor, pos: torch.Tensor, answer: torch.Tensor,
                            z_mean: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """``AIE`` (layer, head): the mean gain in ``P(answer)`` when one head's ``z`` at the read
    position is replaced by its mean ``z_mean`` (layer, head, d_head) from clean prompts."""
    dev = model_device(model)
    L, H = z_mean.shape[:2]
    total = np.zeros((L, H))
    for sl in batched(ids.shape[0], batch_size):
        chunk, p, ans = ids[sl].to(dev), pos[sl].to(dev), answer[sl]
        rows = torch.arange(chunk.shape[0], device=dev)
        base, _ = _answer_prob(forward_logits(model, chunk), p, ans)
        for l in range(L):
            for h in range(H):
                def edit(z, l=l, h=h):
                    out = z.clone()
                    out[rows, p, h] = z_mean[l, h].to(z.dtype)
                    return out
                with hooks(model, {act_name("z", l): edit}):
                    patched, _ = _answer_prob(forward_logits(model, chunk), p, ans)
                total[l, h] += float((patched - base).sum())
    return total / ids.shape[0]


def function_vector(result_mean: torch.Tensor, aie: np.ndarray, n_top_heads: int
                    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The sum of the mean results (layer, head, d_model) of the ``n_top_heads`` heads with the
    largest AIE (layer, head) → ((d_model,), [(layer, head), ...] best first)."""
    order = np.argsort(-aie, axis=None, kind="stable")[:n_top_heads]
    top = [tuple(int(i) for i in np.unravel_index(o, aie.shape)) for o in order]
    return sum(result_mean[l, h] for l, h in top), top


@torch.no_grad()
def vector_effect(model: nn.Module, ids: torch.Tensor, pos: torch.Tensor, answer: torch.Tensor, vector: torch.Tensor,
                  layer: int, batch_size: int = 16) -> dict[str, np.ndarray]:
    """``P(answer)`` and top-1 correctness, (n,) each, without (``prob_clean``, ``top1_clean``)
    and with ``vector`` added to ``resid_post`` of ``layer`` at the read position
    (``prob_fv``, ``top1_fv``)."""
    dev = model_device(model)
    out = {k: [] for k in ("prob_clean", "top1_clean", "prob_fv", "top1_fv")}
    for sl in batched(ids.shape[0], batch_size):
        chunk, p, ans = ids[sl].to(dev), pos[sl].to(dev), answer[sl]
        pr, t1 = _answer_prob(forward_logits(model, chunk), p, ans)
        with hooks(model, {act_name("resid_post", layer): Add(vector, pos=p)}):
            pr_fv, t1_fv = _answer_prob(forward_logits(model, chunk), p, ans)
        for k, v in (("prob_clean", pr), ("top1_clean", t1), ("prob_fv", pr_fv), ("top1_fv", t1_fv)):
            out[k].append(v.cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


class FunctionVectors(Probe):
    """AIE of every head, the function vector of the top heads, and its effect (module docstring).

    Parameters
    ----------
    n_top_heads : int, default 10
        Heads summed into the function vector (the paper uses 10 for GPT-J, 10 to 100 for Llama 2).
    layer : int or None, default None
        Layer whose ``resid_post`` the vector is added to; None: ``n_layers // 3``.
    batch_size : int, default 16

    Call with ``(model, prompts)``, ``prompts`` a :class:`FunctionVectorPrompts`.
    """

    name: ClassVar[str] = "function_vectors"
    n_top_heads: int = Field(10, ge=1, le=100_000)
    layer: int | None = Field(None, ge=0, le=10_000)
    batch_size: int = Field(16, ge=1, le=4096)

    def __call__(self, model: nn.Module, prompts: FunctionVectorPrompts) -> ProbeResult:
        a = anatomy(model)
        layer = a.n_layers // 3 if self.layer is None else self.layer
        if layer >= a.n_layers:
            raise InputError(f"layer = {layer}: the model has layers 0..{a.n_layers - 1}")
        z_mean, r_mean = mean_head_outputs(model, prompts.clean, prompts.clean_pos, self.batch_size)
        aie = average_indirect_effect(model, prompts.shuffled, prompts.shuffled_pos, prompts.shuffled_answer, z_mean,
                                      self.batch_size)
        fv, top = function_vector(r_mean, aie, self.n_top_heads)
        rows = [Row(self.name, "aie", aie[l, h], layer=l, head=h) for (l, h), _ in np.ndenumerate(aie)]
        for what, ids, pos, ans in (("zero_shot", prompts.zero_shot, prompts.zero_shot_pos, prompts.zero_shot_answer),
                                    ("shuffled", prompts.shuffled, prompts.shuffled_pos, prompts.shuffled_answer)):
            eff = vector_effect(model, ids, pos, ans, fv, layer, self.batch_size)
            for cond in ("clean", "fv"):
                rows += [Row(self.name, f"{what}_prob", eff[f"prob_{cond}"].mean(), layer=layer, label=cond),
                         Row(self.name, f"{what}_top1", eff[f"top1_{cond}"].mean(), layer=layer, label=cond)]
        return ProbeResult(rows, {"aie": aie, "function_vector": fv.float().cpu().numpy(),
                                  "top_heads": np.array(top, dtype=np.int64).reshape(-1, 2)})
