"""Natural-task prompts as token ids: right-padded ids, lengths, and the token of each arrow.

A k-shot prompt (:mod:`iclab.tasks.prompts`) is ``x_1 -> y_1 \\n ... x ->``. Task vectors
are read "at the position after each x", the token that holds each ``->``, and task
decodability at the token just before the answer, the query's ``->`` (the prompt's last
token). When a tokenizer splits the arrow (a character-level one does), its token is the
one that holds the ``>``. The tokenizer's offset mapping finds both, so any fast
tokenizer works. Spec
``task_vectors.md``, natural tasks; Han et al., ICML 2025.

Prompts are right-padded to one length: a causal model's states at a prompt's real
tokens do not depend on the padding after them, so no attention mask is needed to read
or patch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from iclab.errors import InputError
from iclab.tasks.prompts import ARROW, Prompt

#: the arrow as it appears in the text; its last character locates the arrow's token
ARROW_MARK = ARROW.strip()


@dataclass(frozen=True)
class EncodedPrompts:
    """Prompts tokenised for one model.

    Attributes
    ----------
    ids : LongTensor of shape (n, pos)
        Token ids, right-padded with ``pad_id``.
    lengths : ndarray of shape (n,), int
        Real tokens of each prompt; its last token, at ``lengths - 1``, is the query's ``->``.
    arrows : list of ndarray, one per prompt
        Token position of every ``->`` (demonstrations, then the query, so
        ``arrows[j][-1] == lengths[j] - 1``).
    prompts : list of Prompt
    tokenizer : the tokenizer used (decodes continuations)
    pad_id : int
    """

    ids: torch.Tensor
    lengths: np.ndarray
    arrows: list[np.ndarray]
    prompts: list[Prompt]
    tokenizer: object = field(repr=False, compare=False)
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def query_positions(self) -> np.ndarray:
        """Position of each prompt's last token (the query's ``->``), (n,)."""
        return self.lengths - 1

    @property
    def tasks(self) -> np.ndarray:
        """Task name of each prompt, (n,)."""
        return np.array([p.task for p in self.prompts])

    @property
    def answers(self) -> list[str]:
        return [p.answer for p in self.prompts]

    def select(self, keep: np.ndarray) -> EncodedPrompts:
        """The prompts where the bool mask ``keep`` (n,) is true, in order."""
        idx = np.nonzero(np.asarray(keep, dtype=bool))[0]
        width = int(self.lengths[idx].max()) if len(idx) else 0
        return EncodedPrompts(self.ids[torch.as_tensor(idx, dtype=torch.long), :width], self.lengths[idx],
                              [self.arrows[i] for i in idx], [self.prompts[i] for i in idx], self.tokenizer,
                              self.pad_id)


def pad_id_of(tokenizer) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    return 0


def _token_at(offsets: Sequence[tuple[int, int]], char: int) -> int | None:
    for t, (start, end) in enumerate(offsets):
        if start <= char < end:
            return t
    return None


def encode_prompts(tokenizer, prompts: Sequence[Prompt]) -> EncodedPrompts:
    """Tokenise ``prompts`` (with the tokenizer's special tokens) and locate their arrows.

    Anything the tokenizer appends after the query's ``->`` (an end-of-sequence token) is
    dropped, so that the model continues the prompt where the answer goes.

    Raises
    ------
    InputError
        If the tokenizer gives no offset mapping (a "slow" tokenizer) or an arrow is not
        covered by any token.
    """
    if not prompts:
        raise InputError("encode_prompts: no prompts")
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"{type(tokenizer).__name__} is not a fast tokenizer: the task probes need its "
                              "offset mapping to find the arrow tokens")
    seqs, arrows = [], []
    for p in prompts:
        enc = tokenizer(p.text, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        pos = [_token_at(offsets, a + len(ARROW_MARK) - 1) for a in p.arrows]  # the token holding '>'
        if any(t is None for t in pos):
            raise InputError(f"no token covers an arrow of prompt {p.text!r}")
        seqs.append(list(enc["input_ids"][: pos[-1] + 1]))
        arrows.append(np.array(pos, dtype=np.int64))
    pad = pad_id_of(tokenizer)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    ids = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.long)  # (n, pos)
    for j, s in enumerate(seqs):
        ids[j, : len(s)] = torch.tensor(s, dtype=torch.long)
    return EncodedPrompts(ids, lengths, arrows, list(prompts), tokenizer, pad)


def answer_token_count(tokenizer, prompts: Sequence[Prompt]) -> int:
    """Most tokens any answer takes when it follows the arrow (as ``" " + answer``)."""
    return max(len(tokenizer(" " + p.answer, add_special_tokens=False)["input_ids"]) for p in prompts)


def answer_tokens(enc: EncodedPrompts) -> tuple[list[list[int]], list[int]]:
    """Token ids of each prompt followed by its answer (``" " + answer``), and the prompt lengths
    (where each answer starts): the training sequences of fine-tuning on the answers."""
    tok = enc.tokenizer
    seqs, starts = [], []
    for j, p in enumerate(enc.prompts):
        prompt = enc.ids[j, : enc.lengths[j]].tolist()
        answer = tok(" " + p.answer, add_special_tokens=False)["input_ids"]
        seqs.append(prompt + list(answer))
        starts.append(len(prompt))
    return seqs, starts
