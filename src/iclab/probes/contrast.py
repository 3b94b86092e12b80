"""Prompts with an answer to score: what the causal tools (patching sweep, logit lens, direct
logit attribution) read.

The score of a prompt is the logit difference at its read position ``p`` (the last token
by default), ``logit[answer] - logit[baseline]``, or the answer's log-probability where no
baseline is given. A patching sweep also needs a corrupted prompt of the same length for
each clean one (Meng et al. 2022; Wang et al. 2023's "clean" and "corrupted" runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from iclab.errors import InputError


def _ids(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.long)
    if t.ndim == 1:
        t = t[None]  # one prompt
    if t.ndim != 2:
        raise InputError(f"{name} must be token ids of shape (n, pos), got shape {tuple(t.shape)}")
    return t


def _per_prompt(x, n: int, name: str) -> torch.Tensor | None:
    if x is None:
        return None
    t = torch.as_tensor(np.asarray(x), dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise InputError(f"{name} needs one token or position per prompt ({n}), got {t.numel()}")
    return t


@dataclass(frozen=True)
class ContrastPrompts:
    """Prompts, the token each should predict, and optionally a baseline token and corrupted copies.

    Attributes
    ----------
    clean : LongTensor of shape (n, pos)
    answer : LongTensor of shape (n,)
        The token whose logit is scored at the read position.
    baseline : LongTensor of shape (n,) or None
        Scored as ``logit[answer] - logit[baseline]``; None scores ``log p(answer)``.
    corrupt : LongTensor of shape (n, pos) or None
        A corrupted prompt for each clean one, same length (the patching sweep's source run
        is the clean one, its target the corrupted one).
    pos : LongTensor of shape (n,)
        Read position of each prompt (the last token unless given: right-padded prompts
        give their own).
    labels : list of str
        A label for each position of the first clean prompt (figures); token ids as text
        unless :func:`contrast_prompts` had a tokenizer.
    """

    clean: torch.Tensor
    answer: torch.Tensor
    baseline: torch.Tensor | None = None
    corrupt: torch.Tensor | None = None
    pos: torch.Tensor | None = None
    labels: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self):
        n, T = self.clean.shape
        if self.corrupt is not None and self.corrupt.shape != self.clean.shape:
            raise InputError(f"corrupted prompts must have the clean prompts' shape {(n, T)}, "
                             f"got {tuple(self.corrupt.shape)}")
        pos = self.pos if self.pos is not None else torch.full((n,), T - 1, dtype=torch.long)
        if pos.shape != (n,) or int(pos.min()) < 0 or int(pos.max()) >= T:
            raise InputError(f"read positions must be (n,) = ({n},) within 0..{T - 1}, got {pos.tolist()}")
        object.__setattr__(self, "pos", pos)
        if not self.labels:
            object.__setattr__(self, "labels", [str(int(t)) for t in self.clean[0]])

    def __len__(self) -> int:
        return self.clean.shape[0]


def contrast_prompts(clean, answer, baseline=None, corrupt=None, pos=None, tokenizer=None) -> ContrastPrompts:
    """Build :class:`ContrastPrompts` from token ids or text.

    Parameters
    ----------
    clean, corrupt : token ids (n, pos) or (pos,), or text (a string or a list of strings,
        tokenised with ``tokenizer``; clean and corrupted texts must tokenise to one length)
    answer, baseline : token id(s), one or one per prompt, or strings (their first token
        under ``tokenizer``, e.g. ``" Paris"``)
    pos : read position(s); default the last token
    """

    def ids(x, name):
        if x is None:
            return None
        if isinstance(x, str) or (isinstance(x, Sequence) and x and all(isinstance(s, str) for s in x)):
            if tokenizer is None:
                raise InputError(f"{name} is text: pass tokenizer=")
            texts = [x] if isinstance(x, str) else list(x)
            enc = [tokenizer(t)["input_ids"] for t in texts]
            if len({len(e) for e in enc}) != 1:
                raise InputError(f"{name}: the texts tokenise to different lengths {[len(e) for e in enc]}; "
                                 f"give prompts of one length")
            return torch.tensor(enc, dtype=torch.long)
        return _ids(x, name)

    def token(x, n, name):
        if x is None:
            return None
        if isinstance(x, str) or (isinstance(x, Sequence) and x and isinstance(x[0], str)):
            if tokenizer is None:
                raise InputError(f"{name} is text: pass tokenizer=")
            x = [tokenizer(s, add_special_tokens=False)["input_ids"][0] for s in ([x] if isinstance(x, str) else x)]
        return _per_prompt(x, n, name)

    c = ids(clean, "clean")
    n = c.shape[0]
    labels = ([tokenizer.decode([int(t)]) for t in c[0]] if tokenizer is not None else [])
    return ContrastPrompts(c, token(answer, n, "answer"), token(baseline, n, "baseline"), ids(corrupt, "corrupt"),
                           _per_prompt(pos, n, "pos"), labels)


def score(logits: torch.Tensor, prompts: ContrastPrompts, rows: slice | None = None) -> torch.Tensor:
    """Each prompt's score from logits (n, pos, vocab): ``logit[answer] - logit[baseline]`` at its
    read position, or ``log p(answer)`` without a baseline → (n,)."""
    sl = rows if rows is not None else slice(None)
    pos, answer = prompts.pos[sl].to(logits.device), prompts.answer[sl].to(logits.device)
    at = logits[torch.arange(logits.shape[0], device=logits.device), pos].float()  # (n, vocab)
    if prompts.baseline is None:
        return at.log_softmax(-1).gather(1, answer[:, None])[:, 0]
    base = prompts.baseline[sl].to(logits.device)
    return at.gather(1, answer[:, None])[:, 0] - at.gather(1, base[:, None])[:, 0]
