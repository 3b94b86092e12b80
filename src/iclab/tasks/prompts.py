"""k-shot text prompts for natural tasks, and the "prompting" control that states the task.

A k-shot prompt is k demonstrations ``x_i -> y_i``, one a line, then the query ``x ->``;
the model should continue with `` y`` (greedy decoding, exact match). With
``instruct=True`` the task stated in words (the task's ``instruction``) comes first on
its own line: the "prompting" control of Han et al., "Emergence and Effectiveness of
Task Vectors in In-Context Learning: An Encoder Decoder Perspective", ICML 2025 (spec
``task_vectors.md``; default k = 4, also 1 and 10). For example, 2-shot XOR::

    Compute the bitwise XOR of the two binary numbers.
    01101 10110 -> 11011
    00011 00001 -> 00010
    11100 01010 ->

The text ends at ``->`` with no trailing space, because tokenizers usually attach the
space to the answer's first token; ``answer`` carries no leading space, so compare it to
the stripped continuation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iclab.errors import ConfigError
from iclab.tasks.base import Example, NaturalTask

#: between an input and its output
ARROW = " -> "


@dataclass(frozen=True)
class Prompt:
    """A prompt and its expected answer.

    Attributes
    ----------
    text : str
        The prompt, ending with ``"->"``.
    answer : str
        The query's output (no leading space).
    task : str
        Name of the task that drew the examples.
    demonstrations : tuple of Example
        The k demonstrations, in prompt order.
    query : str
        The query's input.
    arrows : tuple of int, length k + 1
        Character offset in ``text`` of each ``"->"``, demonstrations then query: the
        position "after each x" where task vectors are read (with a tokenizer's offset
        mapping).
    """

    text: str
    answer: str
    task: str
    demonstrations: tuple[Example, ...]
    query: str
    arrows: tuple[int, ...]


def format_prompt(demonstrations: Sequence[Example], query: str,
                  instruction: str | None = None) -> tuple[str, tuple[int, ...]]:
    """The prompt text for ``demonstrations`` and ``query``, and the offsets of its arrows."""
    text = "" if instruction is None else instruction + "\n"
    arrows = []
    for d in demonstrations:
        arrows.append(len(text) + len(d.input) + 1)
        text += f"{d.input}{ARROW}{d.output}\n"
    arrows.append(len(text) + len(query) + 1)
    text += f"{query}{ARROW.rstrip()}"
    return text, tuple(arrows)


def build_prompt(task: NaturalTask, rng: np.random.Generator, k: int = 4, *,
                 instruct: bool = False) -> Prompt:
    """One k-shot prompt: ``k + 1`` examples of ``task`` from ``rng``, the last one the query.

    Parameters
    ----------
    task : NaturalTask
    rng : numpy.random.Generator
        The only source of randomness: the same state gives the same prompt.
    k : int, default 4
        Number of demonstrations (0 gives a zero-shot prompt).
    instruct : bool, default False
        Put ``task.instruction`` on the first line (the "prompting" control).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"k (shots) must be an integer >= 0; got {k!r}")
    *demos, query = task.examples(rng, k + 1)
    text, arrows = format_prompt(demos, query.input, task.instruction if instruct else None)
    return Prompt(text, query.output, task.name, tuple(demos), query.input, arrows)


def build_prompts(task: NaturalTask, rng: np.random.Generator, n: int, k: int = 4, *,
                  instruct: bool = False) -> list[Prompt]:
    """``n`` independent k-shot prompts of ``task`` (see :func:`build_prompt`)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n (prompts) must be an integer >= 0; got {n!r}")
    return [build_prompt(task, rng, k, instruct=instruct) for _ in range(n)]
