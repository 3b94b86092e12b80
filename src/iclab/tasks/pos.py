"""Part-of-speech tasks: the first word of a sentence that has a given part of speech.

For a target part of speech P with Universal POS tags U(P), the answer for a sentence
w_1 ... w_m is w_j with j = min{i : upos(w_i) ∈ U(P)}, written as in the sentence.
Han et al., "Emergence and Effectiveness of Task Vectors in In-Context Learning: An
Encoder Decoder Perspective", ICML 2025 (spec ``task_vectors.md``, "Natural tasks on
pretrained LMs"). Only sentences that contain P are used for P's task. The Null task
answers a uniformly random non-punctuation word of any sentence.

Mapping from targets to UPOS tags (``TARGET_UPOS``)::

    noun        NOUN, PROPN   proper nouns count: a person asked for "the first noun"
                              of "Maria wrote a letter" says "Maria"
    adjective   ADJ
    verb        VERB          not AUX: UD tags "is", "has", "will" as AUX in their
                              copula/auxiliary uses, so "She is running" answers "running"
    adverb      ADV
    preposition ADP
    pronoun     PRON          includes possessives ("my", "their"), as UD does

Format: the input is the sentence text as written (``# text`` of the CoNLL-U file,
punctuation included) and the output one word, e.g. adjective:
``"The old fisherman slowly pulled his heavy net from the water."`` → ``"old"``.

Sentences come from the set shipped with iclab (``iclab/data/pos_sentences.conllu``,
written for the project) or from a user's CoNLL-U file.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from iclab.errors import ConfigError
from iclab.tasks.base import NULL, Example
from iclab.tasks.conllu import Sentence, parse_conllu, read_conllu

TARGET_UPOS: dict[str, tuple[str, ...]] = {
    "noun": ("NOUN", "PROPN"),
    "adjective": ("ADJ",),
    "verb": ("VERB",),
    "adverb": ("ADV",),
    "preposition": ("ADP",),
    "pronoun": ("PRON",),
}
TARGETS = tuple(TARGET_UPOS)


@functools.cache
def shipped_sentences() -> tuple[Sentence, ...]:
    """The tagged sentences shipped with iclab (see ``iclab/data/README.md``)."""
    text = (resources.files("iclab") / "data" / "pos_sentences.conllu").read_text(encoding="utf-8")
    return tuple(parse_conllu(text, source="iclab/data/pos_sentences.conllu"))


def first_word(sentence: Sentence, target: str) -> str | None:
    """The form of the first word of ``sentence`` tagged as ``target``, or None if there is none."""
    tags = TARGET_UPOS[target]
    return next((w.form for w in sentence.words if w.upos in tags), None)


def _content_words(sentence: Sentence) -> list[str]:
    return [w.form for w in sentence.words if w.upos != "PUNCT"]


@dataclass(frozen=True)
class PosTask:
    """Output the first word of a sentence with part of speech ``target``, or the Null task.

    Parameters
    ----------
    target : {"noun", "adjective", "verb", "adverb", "preposition", "pronoun", "null"}
        The part of speech; ``"null"`` outputs a random word of the sentence.
    conllu : path or None, default None
        A CoNLL-U file to take sentences from; None uses the set shipped with iclab.
    """

    target: str
    conllu: str | os.PathLike | None = None
    family = "pos"
    _pool: tuple[Sentence, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.target not in (*TARGETS, NULL):
            raise ConfigError(f"POS target {self.target!r} is not allowed; allowed: {', '.join((*TARGETS, NULL))}")
        sentences = shipped_sentences() if self.conllu is None else read_conllu(self.conllu)
        if self.is_null:
            pool = tuple(s for s in sentences if _content_words(s))
        else:
            pool = tuple(s for s in sentences if first_word(s, self.target) is not None)
        if not pool:
            source = "the shipped set" if self.conllu is None else repr(str(Path(self.conllu)))
            raise ConfigError(f"no sentence of {source} has a word tagged "
                              f"{'/'.join(TARGET_UPOS.get(self.target, ('non-PUNCT',)))}; "
                              f"task {self.name!r} needs at least one")
        object.__setattr__(self, "_pool", pool)  # frozen: derived once, here

    @property
    def name(self) -> str:
        return f"{self.family}-{self.target}"

    @property
    def is_null(self) -> bool:
        return self.target == NULL

    @property
    def instruction(self) -> str:
        if self.is_null:
            return "Output a random word of the sentence."
        return f"Output the first {self.target} in the sentence."

    @property
    def sentences(self) -> tuple[Sentence, ...]:
        """The sentences this task draws from (those that contain the target)."""
        return self._pool

    def examples(self, rng: np.random.Generator, n: int) -> list[Example]:
        """Draw ``n`` examples, distinct sentences while the pool has ``n`` of them."""
        picks = rng.choice(len(self._pool), size=n, replace=n > len(self._pool))
        out = []
        for s in (self._pool[i] for i in picks):
            if self.is_null:
                words = _content_words(s)
                answer = words[rng.integers(len(words))]
            else:
                answer = first_word(s, self.target)
            out.append(Example(s.text, answer))
        return out

    def null(self) -> PosTask:
        return PosTask(NULL, self.conllu)
