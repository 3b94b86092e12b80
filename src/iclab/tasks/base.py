"""The natural-task protocol: a named map from text inputs to text outputs.

A natural task draws ``(input, output)`` string pairs from a ``numpy.random.Generator``;
a k-shot prompt is k of them as demonstrations followed by one more as the query
(:mod:`iclab.tasks.prompts`). Tasks come in families (``bitwise``, ``pos``) whose members
share their inputs and differ only in the map to the output, and every family has a
**Null** member whose output is random given the input. The Null class is the negative
control of task decodability and of activation patching in Han et al., "Emergence and
Effectiveness of Task Vectors in In-Context Learning: An Encoder Decoder Perspective",
ICML 2025 (spec ``task_vectors.md``, "Natural tasks on pretrained LMs").

Tasks are pure Python and NumPy: no tokenizer, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

#: the ``target``/``op`` value of the Null member of every family
NULL = "null"


@dataclass(frozen=True)
class Example:
    """One input and the output the task maps it to, both plain text."""

    input: str
    output: str


@runtime_checkable
class NaturalTask(Protocol):
    """What every natural task provides.

    Attributes
    ----------
    name : str
        Registry key, ``"{family}-{member}"`` (e.g. ``"bitwise-xor"``, ``"pos-null"``).
    family : str
        Tasks of one family share their inputs (``"bitwise"``, ``"pos"``).
    is_null : bool
        Whether this is the family's Null task (output random given the input).
    instruction : str
        The task stated in one sentence, for the "prompting" control.
    """

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def is_null(self) -> bool: ...

    @property
    def instruction(self) -> str: ...

    def examples(self, rng: np.random.Generator, n: int) -> list[Example]:
        """Draw ``n`` examples; the same ``rng`` state gives the same examples."""
        ...

    def null(self) -> NaturalTask:
        """The Null task of the same family, on the same inputs (e.g. the same sentences)."""
        ...
