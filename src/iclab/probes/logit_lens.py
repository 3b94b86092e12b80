"""Logit lens: read every layer's residual stream with the model's own final norm and unembedding.

    lens_l(x) = W_U · final_norm(resid_post_l(x)) + b_U

for each layer ``l`` (nostalgebraist 2020, "interpreting GPT: the logit lens"). At the last
layer this is the model's output (the ``logits`` identity of
:mod:`iclab.models.identities`, which this probe requires); earlier layers show when the
answer becomes readable. Rows (``probe="logit_lens"``, one per layer): ``lens_logprob``
(mean log-probability of the answer at the read position), ``lens_rank`` (mean rank of the
answer, 0 = top), ``lens_top1`` (share of prompts whose top token is the answer) and, with
a baseline, ``lens_logit_diff``. Arrays: ``logprob`` (layer, n) and ``top_token`` (layer, n).

Example::

    from iclab.probes.logit_lens import LogitLens, logit_lens
    lens = logit_lens(model, ids)                       # (layer, batch, pos, vocab)
    rows = LogitLens()(model, contrast_prompts(ids, answer=tokens)).rows
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from iclab.models.capture import capture, model_tokenizer
from iclab.models.hooks import anatomy
from iclab.models.identities import require_identities
from iclab.models.names import act_name
from iclab.probes.base import Probe, batched, model_device
from iclab.probes.contrast import ContrastPrompts
from iclab.probes.result import ProbeResult
from iclab.rows import Row


@torch.no_grad()
def logit_lens(model: nn.Module, inputs, pos=None, tokenizer=None) -> torch.Tensor:
    """Every layer's ``resid_post`` through the final norm and unembedding.

    Parameters
    ----------
    model : PreTrainedModel
    inputs : token ids (batch, pos) or text (see :func:`iclab.models.capture.capture`)
    pos : int, list of int or None
        Positions to read (None: all), so that a large vocabulary need not be kept for every one.
    tokenizer : optional, for text inputs

    Returns
    -------
    Tensor of shape (layer, batch, n_pos, vocab)
        ``[-1]`` equals the model's logits at those positions.
    """
    a = anatomy(model)
    names = [act_name("resid_post", l) for l in range(a.n_layers)]
    cache = capture(model, inputs, names, tokenizer=tokenizer or model_tokenizer(model))
    sel = slice(None) if pos is None else ([pos] if isinstance(pos, int) else list(pos))
    out = [a.unembed(a.final_norm(cache[n][:, sel])) for n in names]  # each (batch, n_pos, vocab)
    return torch.stack(out)  # (layer, batch, n_pos, vocab)


class LogitLens(Probe):
    """The answer's log-probability, rank and top-1 share when each layer is read out (module docstring).

    Parameters
    ----------
    batch_size : int, default 16

    Call with ``(model, prompts)``, ``prompts`` a :class:`~iclab.probes.contrast.ContrastPrompts`.
    """

    name: ClassVar[str] = "logit_lens"
    batch_size: int = Field(16, ge=1, le=4096)

    @torch.no_grad()
    def __call__(self, model: nn.Module, prompts: ContrastPrompts) -> ProbeResult:
        require_identities(model)
        a = anatomy(model)
        dev = model_device(model)
        n, L = len(prompts), a.n_layers
        logprob, rank, top, diff = (np.zeros((L, n)) for _ in range(4))
        top = top.astype(np.int64)
        for sl in batched(n, self.batch_size):
            ids = prompts.clean[sl].to(dev)
            pos = prompts.pos[sl].to(dev)
            rows = torch.arange(ids.shape[0], device=dev)
            cache = capture(model, ids, [act_name("resid_post", l) for l in range(L)])
            for l in range(L):
                x = cache[act_name("resid_post", l)][rows, pos]  # (chunk, d_model)
                logits = a.unembed(a.final_norm(x[:, None]))[:, 0].float()  # (chunk, vocab)
                answer = prompts.answer[sl].to(dev)
                lp = logits.log_softmax(-1)
                mine = lp.gather(1, answer[:, None])[:, 0]  # (chunk,)
                logprob[l, sl] = mine.cpu().numpy()
                rank[l, sl] = (lp > mine[:, None]).sum(-1).cpu().numpy()
                top[l, sl] = logits.argmax(-1).cpu().numpy()
                if prompts.baseline is not None:
                    base = prompts.baseline[sl].to(dev)
                    gap = logits.gather(1, answer[:, None]) - logits.gather(1, base[:, None])  # (chunk, 1)
                    diff[l, sl] = gap[:, 0].cpu().numpy()
        answers = prompts.answer.numpy()
        rows_out = []
        for l in range(L):
            rows_out += [Row(self.name, "lens_logprob", logprob[l].mean(), layer=l),
                         Row(self.name, "lens_rank", rank[l].mean(), layer=l),
                         Row(self.name, "lens_top1", (top[l] == answers).mean(), layer=l)]
            if prompts.baseline is not None:
                rows_out.append(Row(self.name, "lens_logit_diff", diff[l].mean(), layer=l))
        return ProbeResult(rows_out, {"logprob": logprob, "top_token": top})
