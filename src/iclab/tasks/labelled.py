"""Labelled classification sets: texts with one label each, and the prompt template around them.

A set is the data of the label-semantics and demo-selection studies (spec ``mechanisms.md``:
"a small labelled set for the demonstrations ships with the project; a user can point the
study at their own CSV/JSONL"). Each example is shown as::

    {input_prefix} {text}
    {label_prefix} {label}

and examples are joined by a blank line; the query ends at ``{label_prefix}``, so the model's
next token is the label's (see :func:`format_example`).

Shipped sets (``iclab/data/labels_<name>.jsonl``, written for iclab, see ``iclab/data/README.md``):

============  ===============================  ==========================  ========
name          labels                           template                    examples
============  ===============================  ==========================  ========
sentiment     positive, negative               ``Review:`` / ``Sentiment:``  48
topic         sports, business, science, food  ``Article:`` / ``Topic:``     48
entailment    yes, no                          ``Text:`` / ``Entailed:``     40
============  ===============================  ==========================  ========

A user's file is CSV (a header row) or JSON Lines (one object a line) with a text and a
label column (:func:`read_labelled`). ``ood_sentences()`` are neutral sentences written for
iclab, the out-of-distribution inputs of Min et al. (2022).

Pure Python: no tokenizer, no torch.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from iclab.errors import ConfigError, UnknownNameError

#: shipped set -> (input prefix, label prefix, label names in order)
SHIPPED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sentiment": ("Review:", "Sentiment:", ("positive", "negative")),
    "topic": ("Article:", "Topic:", ("sports", "business", "science", "food")),
    "entailment": ("Text:", "Entailed:", ("yes", "no")),
}
#: fewest examples a label of a user's set must have (one demonstration plus one query)
MIN_PER_LABEL = 2


@dataclass(frozen=True)
class LabelledSet:
    """A classification task as data.

    Attributes
    ----------
    name : str
    texts : tuple of str, length n
    labels : tuple of int, length n
        Index of each text's label in ``label_names``.
    label_names : tuple of str
        The labels as words, in a fixed order (class ``c`` is ``label_names[c]``).
    input_prefix, label_prefix : str
        The template's two line openings (``"Review:"``, ``"Sentiment:"``).
    """

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    input_prefix: str = "Input:"
    label_prefix: str = "Label:"

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


def format_example(s: LabelledSet, text: str, label: str | None) -> str:
    """One example as text: the input line, then the label line; with ``label`` None the label
    line is its prefix alone (the query, whose label the model is to say)."""
    line = f"{s.label_prefix} {label}" if label is not None else s.label_prefix
    return f"{s.input_prefix} {text}\n{line}"


def format_input(s: LabelledSet, text: str) -> str:
    """The input line alone (a demonstration without its label)."""
    return f"{s.input_prefix} {text}"


#: between two examples of a prompt
SEPARATOR = "\n\n"


def shipped_names() -> list[str]:
    return list(SHIPPED)


@functools.cache
def shipped_set(name: str) -> LabelledSet:
    """The shipped set ``name`` (see the module docstring); lists the known names if unknown."""
    if name not in SHIPPED:
        raise UnknownNameError("labelled set", name, shipped_names())
    input_prefix, label_prefix, names = SHIPPED[name]
    text = (resources.files("iclab") / "data" / f"labels_{name}.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return _build(name, [r["text"] for r in records], [r["label"] for r in records], names, input_prefix,
                  label_prefix, f"iclab/data/labels_{name}.jsonl")


@functools.cache
def ood_sentences() -> tuple[str, ...]:
    """Neutral sentences, unrelated to every shipped task: the out-of-distribution inputs."""
    text = (resources.files("iclab") / "data" / "ood_sentences.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _build(name: str, texts: list[str], labels: list[str], names: tuple[str, ...] | None, input_prefix: str,
           label_prefix: str, source: str) -> LabelledSet:
    if names is None:
        names = tuple(sorted(set(labels)))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ConfigError(f"{source}: label(s) {unknown} are not among {list(names)}")
    return LabelledSet(name, tuple(texts), tuple(names.index(x) for x in labels), tuple(names), input_prefix,
                       label_prefix)


def read_labelled(path: str | os.PathLike, text_column: str = "text", label_column: str = "label", *,
                  input_prefix: str = "Input:", label_prefix: str = "Label:",
                  labels: list[str] | None = None) -> LabelledSet:
    """A user's labelled set from a CSV file (with a header row) or a JSON Lines file
    (``.jsonl``/``.json``: one object a line).

    Parameters
    ----------
    path : path
    text_column, label_column : str, default "text", "label"
        The columns (keys) holding each example's text and label.
    input_prefix, label_prefix : str
        The template (see the module docstring).
    labels : list of str, optional
        The label names in order; default: the labels found, sorted.

    Raises
    ------
    ConfigError
        One line naming the file and what is wrong: missing, unreadable, a column that is
        absent (the columns found are listed), an empty text or label (with its line), fewer
        than two labels, or a label with fewer than two examples.
    """
    p = Path(path).expanduser()
    where = f"data.path = {str(path)!r}"
    if not p.is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where} cannot be read ({e})") from None
    records: list[tuple[int, dict]] = []
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{where}: line {i} is not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"{where}: line {i} holds a {type(obj).__name__}, not an object")
            records.append((i, obj))
    else:
        reader = csv.DictReader(raw.splitlines())
        records = [(i + 2, dict(r)) for i, r in enumerate(reader)]  # line 1 is the header
    if not records:
        raise ConfigError(f"{where}: no examples")
    found = list(dict.fromkeys(k for _, r in records for k in r))
    for column, key in ((text_column, "data.text_column"), (label_column, "data.label_column")):
        if column not in found:
            raise ConfigError(f"{where}: no column {column!r} ({key}); columns found: {', '.join(map(str, found))}")
    texts, labs = [], []
    for line, r in records:
        text, label = r.get(text_column), r.get(label_column)
        text = "" if text is None else str(text).strip()
        label = "" if label is None else str(label).strip()
        if not text or not label:
            raise ConfigError(f"{where}: line {line} has an empty {text_column if not text else label_column!r}")
        texts.append(" ".join(text.split()))  # one line: a newline would break the template
        labs.append(label)
    names = tuple(labels) if labels else None
    s = _build(p.stem, texts, labs, names, input_prefix, label_prefix, where)
    if s.n_classes < 2:
        raise ConfigError(f"{where}: only one label ({s.label_names[0]!r}); a classification set needs two or more")
    counts = {n: s.labels.count(c) for c, n in enumerate(s.label_names)}
    few = {n: c for n, c in counts.items() if c < MIN_PER_LABEL}
    if few:
        raise ConfigError(f"{where}: label(s) with fewer than {MIN_PER_LABEL} examples: {few}")
    return s
