"""Natural tasks for pretrained LMs, registered by name: bitwise arithmetic and POS tagging.

The two families of Han et al., "Emergence and Effectiveness of Task Vectors in In-Context
Learning: An Encoder Decoder Perspective", ICML 2025 (spec ``task_vectors.md``, "Natural
tasks on pretrained LMs"), each with its Null task::

    bitwise-{and, nand, or, nor, xor, xnor, null}
    pos-{noun, adjective, verb, adverb, preposition, pronoun, null}

Adding a task is a class with the :class:`NaturalTask` members plus a line in
``_REGISTRY`` below. Tasks are pure Python and NumPy (no tokenizer, no torch).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from iclab.errors import ConfigError, UnknownNameError
from iclab.tasks.base import NULL, Example, NaturalTask
from iclab.tasks.bitwise import OPS, BitwiseTask
from iclab.tasks.conllu import Sentence, Word, parse_conllu, read_conllu
from iclab.tasks.pos import TARGET_UPOS, TARGETS, PosTask, shipped_sentences
from iclab.tasks.prompts import Prompt, build_prompt, build_prompts, format_prompt

# name -> factory taking the optional CoNLL-U path; families in paper order, Null last
_REGISTRY: dict[str, Callable[[str | os.PathLike | None], NaturalTask]] = {
    **{f"bitwise-{op}": (lambda conllu, op=op: BitwiseTask(op)) for op in (*OPS, NULL)},
    **{f"pos-{t}": (lambda conllu, t=t: PosTask(t, conllu)) for t in (*TARGETS, NULL)},
}


def task_names(family: str | None = None) -> list[str]:
    """Names of the registered tasks (of one ``family`` if given), in paper order, Null last."""
    if family is None:
        return list(_REGISTRY)
    families = sorted({name.split("-")[0] for name in _REGISTRY})
    if family not in families:
        raise UnknownNameError("task family", family, families)
    return [name for name in _REGISTRY if name.startswith(f"{family}-")]


def get_task(name: str, *, conllu: str | os.PathLike | None = None) -> NaturalTask:
    """The task registered as ``name``; lists the known names if unknown.

    Parameters
    ----------
    name : str
        E.g. ``"bitwise-xor"``, ``"pos-noun"``, ``"pos-null"``.
    conllu : path or None, default None
        For POS tasks, a CoNLL-U file to take sentences from instead of the shipped set.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("task", name, task_names()) from None
    if conllu is not None and not name.startswith("pos-"):
        raise ConfigError(f"conllu={str(conllu)!r} was given for task {name!r}, "
                          "but only pos-* tasks read a CoNLL-U file")
    return factory(conllu)


__all__ = ["BitwiseTask", "Example", "NULL", "NaturalTask", "OPS", "PosTask", "Prompt",
           "Sentence", "TARGETS", "TARGET_UPOS", "Word", "build_prompt", "build_prompts",
           "format_prompt", "get_task", "parse_conllu", "read_conllu", "shipped_sentences",
           "task_names"]
