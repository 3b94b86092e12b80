"""What the studies that classify labelled text share (label-semantics, demo-selection): the
``data`` section (the shipped sets by name, or a user's CSV/JSONL file), and prompts as
:class:`Case` s encoded for the label-scoring probe."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from iclab.config import Frozen
from iclab.limits import MAX_LIST
from iclab.models.build import n_params
from iclab.models.load import LoadSettings, load_model
from iclab.probes.label_scoring import LabelPrompts, encode_texts, label_token_ids
from iclab.progress import progress_bar
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.tasks.labelled import LabelledSet, read_labelled, shipped_set

ShippedSet = Literal["sentiment", "topic", "entailment"]


class DataSettings(Frozen):
    """Which labelled sets the study classifies (see :mod:`iclab.tasks.labelled`).

    Parameters
    ----------
    tasks : list of {"sentiment", "topic", "entailment"}, default all three
        The sets shipped with iclab (written for it).
    path : str or None, default None
        A CSV (with a header row) or JSON Lines file of your own; when set it replaces
        ``tasks``. Its columns are checked before the run starts.
    text_column, label_column : str, default "text", "label"
    input_prefix, label_prefix : str, default "Input:", "Label:"
        The template of your file's examples (``Input: <text>`` / ``Label: <label>``).
    labels : list of str or None, default None
        Your labels in order; None: the labels found, sorted.
    """

    tasks: list[ShippedSet] = Field(default_factory=lambda: ["sentiment", "topic", "entailment"], min_length=1,
                                    max_length=3)
    path: str | None = Field(None, min_length=1)
    text_column: str = Field("text", min_length=1)
    label_column: str = Field("label", min_length=1)
    input_prefix: str = Field("Input:", min_length=1)
    label_prefix: str = Field("Label:", min_length=1)
    labels: list[str] | None = Field(None, min_length=2, max_length=MAX_LIST)

    def sets(self) -> list[LabelledSet]:
        """The sets, read now (a user's file is validated here: ConfigError naming what is wrong)."""
        if self.path is not None:
            return [read_labelled(self.path, self.text_column, self.label_column, input_prefix=self.input_prefix,
                                  label_prefix=self.label_prefix, labels=self.labels)]
        return [shipped_set(t) for t in dict.fromkeys(self.tasks)]


@dataclass(frozen=True)
class Case:
    """One prompt: its text, candidate label words, the target index of each metric (-1: none),
    and its group (the row label its accuracy counts toward)."""

    text: str
    candidates: tuple[str, ...]
    targets: dict[str, int]
    group: str


def encode_cases(tokenizer, items: list[Case], label_prefix: str) -> LabelPrompts:
    """Token ids of the cases' texts and the one token of each candidate label (refused if not one)."""
    ids, lengths = encode_texts(tokenizer, [c.text for c in items])
    width = max(len(c.candidates) for c in items)
    token_of: dict[tuple[str, ...], list[int]] = {}
    cands = np.full((len(items), width), -1, dtype=np.int64)
    for j, c in enumerate(items):
        if c.candidates not in token_of:
            token_of[c.candidates] = label_token_ids(tokenizer, c.candidates, label_prefix)
        cands[j, : len(c.candidates)] = token_of[c.candidates]
    metrics = list(dict.fromkeys(m for c in items for m in c.targets))
    targets = {m: np.array([c.targets.get(m, -1) for c in items], dtype=np.int64) for m in metrics}
    return LabelPrompts(ids, lengths, cands, targets, np.array([c.group for c in items]), [c.text for c in items])


def prompt_counts(prompts: LabelPrompts, probe: str = "label_scoring") -> list[Row]:
    """How many prompts each group's accuracy averages (for the error bars)."""
    return [Row(probe, "n_prompts", float((prompts.groups == g).sum()), label=str(g))
            for g in dict.fromkeys(prompts.groups.tolist())]


def score_models(run: Run, names: list[str], sets: list[LabelledSet], settings: LoadSettings, title: str,
                 score_set: Callable[..., Rows], extra_labels: Callable[[LabelledSet], Sequence[str]] | None = None
                 ) -> None:
    """Load each model of ``names`` in turn (one in memory at a time), score every set with
    ``score_set(model, tokenizer, labelled_set) -> Rows`` and save the rows tagged with the model,
    and the ``models`` and ``sets`` arrays the reports read.

    Before a model scores anything, every label its prompts can use (each set's label names and
    ``extra_labels(set)``) is checked to be one token under its tokenizer, so a label that is not
    is refused in a second, not after the sets before it have been scored."""
    rows, sizes = Rows(), []
    with progress_bar() as bar:
        task = bar.add_task(title, total=len(names) * len(sets), info="")
        for name in names:
            model, tokenizer = load_model(name, tokenizer="required", settings=settings)
            for s in sets:
                label_token_ids(tokenizer, s.label_names, s.label_prefix)
                if extra_labels is not None:
                    label_token_ids(tokenizer, list(extra_labels(s)), s.label_prefix)
            sizes.append(n_params(model))
            for s in sets:
                rows += score_set(model, tokenizer, s).tagged(model=name)
                bar.update(task, advance=1, info=f"{name}: {s.name}")
            del model
            gc.collect()
    run.save_arrays("models", names=np.array(names), n_params=np.array(sizes, dtype=np.int64))
    run.save_arrays("sets", names=np.array([s.name for s in sets]), n_classes=np.array([s.n_classes for s in sets]))
    run.save_rows(rows)
