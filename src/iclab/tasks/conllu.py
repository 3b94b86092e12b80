"""A reader for CoNLL-U files: sentences as words with their Universal POS tags.

CoNLL-U (https://universaldependencies.org/format.html) writes one word a line with ten
tab-separated columns ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``, a blank
line after each sentence, and ``#`` comment lines before it (``# text = ...`` holds the
sentence as written). The POS tasks of Han et al. (ICML 2025; spec ``task_vectors.md``)
need only ID, FORM, LEMMA and UPOS, so the other columns may be ``_``.

Multiword tokens (ID ``1-2``, e.g. "don't" over "do" + "n't") and empty nodes (ID
``1.1``) are not words: they are skipped, except that a multiword token's surface form
is used to rebuild the text of a sentence without a ``# text`` comment. Any malformed
line raises :class:`iclab.errors.ConfigError` naming the file and the line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from iclab.errors import ConfigError

#: the 17 Universal POS tags (https://universaldependencies.org/u/pos/)
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")

_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")


@dataclass(frozen=True)
class Word:
    """One syntactic word: its form as written, lemma, UPOS tag, and whether a space follows."""

    form: str
    lemma: str
    upos: str
    space_after: bool = True


@dataclass(frozen=True)
class Sentence:
    """A sentence: its words in order, its text as written, and its ``sent_id`` if given."""

    words: tuple[Word, ...]
    text: str
    sent_id: str | None = None


def read_conllu(path: str | os.PathLike) -> list[Sentence]:
    """Read every sentence of the CoNLL-U file at ``path``.

    Raises
    ------
    ConfigError
        If the file cannot be read, holds no sentence, or has a malformed line (the
        message names the file and the line number).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read CoNLL-U file {str(path)!r}: {e}") from e
    return parse_conllu(text, source=str(path))


def parse_conllu(text: str, source: str = "<string>") -> list[Sentence]:
    """Parse CoNLL-U ``text``; ``source`` names it in error messages (a path, usually)."""
    sentences: list[Sentence] = []
    rows: list[tuple[int, list[str]]] = []  # (line number, columns) of the open sentence
    comments: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if rows:
                sentences.append(_sentence(rows, comments, source))
            rows, comments = [], []
        elif line.startswith("#"):
            comments.append(line)
        else:
            rows.append((lineno, line.split("\t")))
    if rows:  # the format asks for a final blank line; a missing one loses nothing
        sentences.append(_sentence(rows, comments, source))
    if not sentences:
        raise ConfigError(f"{source}: no sentences found (expected CoNLL-U: one word a line, "
                          "10 tab-separated columns, a blank line after each sentence)")
    return sentences


def _sentence(rows: list[tuple[int, list[str]]], comments: list[str], source: str) -> Sentence:
    words: list[Word] = []
    ranges: dict[int, tuple[int, str, bool]] = {}  # first word id -> (last id, form, space_after)
    for lineno, cols in rows:
        row = "\t".join(cols)

        def fail(problem: str) -> ConfigError:
            return ConfigError(f"{source}, line {lineno}: {problem}: {row!r}")

        if len(cols) != 10:
            raise fail(f"expected 10 tab-separated columns, got {len(cols)}")
        wid, form, lemma, upos, misc = cols[0], cols[1], cols[2], cols[3], cols[9]
        space_after = "SpaceAfter=No" not in misc.split("|")
        if m := _RANGE_ID.fullmatch(wid):
            first, last = int(m[1]), int(m[2])
            if last <= first:
                raise fail(f"multiword token range {wid!r} must end after it starts")
            ranges[first] = (last, form, space_after)
            continue
        if _EMPTY_ID.fullmatch(wid):
            continue
        if not _WORD_ID.fullmatch(wid):
            raise fail(f"ID {wid!r} is not a word number, a range 'a-b' or an empty node 'a.b'")
        if int(wid) != len(words) + 1:
            raise fail(f"word ID {wid} out of order; expected {len(words) + 1}")
        if not form or form.isspace():
            raise fail("FORM is empty")
        if upos not in UPOS_TAGS:
            raise fail(f"UPOS {upos!r} is not a Universal POS tag; allowed: {', '.join(UPOS_TAGS)}")
        words.append(Word(form, lemma, upos, space_after))
    if not words:
        raise ConfigError(f"{source}, line {rows[0][0]}: sentence has no words, only "
                          "multiword tokens or empty nodes")
    meta = dict(_comment_field(c) for c in comments if "=" in c)
    text = meta.get("text") or _rebuild_text(words, ranges)
    return Sentence(tuple(words), text, meta.get("sent_id"))


def _comment_field(comment: str) -> tuple[str, str]:
    key, _, value = comment.lstrip("#").partition("=")
    return key.strip(), value.strip()


def _rebuild_text(words: list[Word], ranges: dict[int, tuple[int, str, bool]]) -> str:
    parts: list[str] = []
    i = 1
    while i <= len(words):
        if i in ranges:  # write "don't", not "do n't"
            last, form, space = ranges[i]
            i = last + 1
        else:
            form, space = words[i - 1].form, words[i - 1].space_after
            i += 1
        parts.append(form + (" " if space else ""))
    return "".join(parts).strip()
