"""The ``data`` section shared by the studies that classify labelled text (label-semantics,
demo-selection): the shipped sets by name, or a user's CSV/JSONL file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from iclab.config import Frozen
from iclab.limits import MAX_LIST
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
