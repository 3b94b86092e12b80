"""Every size a config can set is bounded, and every float is finite, in every study's schema.

The schema is walked, not listed: each int setting (also inside lists and optional ones) is set
to 10^15, each float setting to NaN and to infinity, through the same overrides as
``--set``, and each must be refused with one line that names its key. A field added later
without a cap fails here.
"""

from __future__ import annotations

import math
import types
import typing

import pytest
from pydantic import BaseModel

from iclab.errors import ConfigError
from iclab.studies import STUDIES, get_study

HUGE = 10**15


def _unwrap(ann) -> list:
    """The types an annotation can hold: Optional, Union and Annotated opened."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(ann) for t in _unwrap(a)]
    return [ann]


def _bad_values(ann) -> list:
    """Values an annotation must refuse: a huge int, NaN and infinity, also as list items."""
    out = []
    for t in _unwrap(ann):
        origin = typing.get_origin(t)
        if t is int:
            out.append(HUGE)
        elif t is float:
            out += [math.nan, math.inf]
        elif origin in (list, tuple):
            args = [a for a in typing.get_args(t) if a is not Ellipsis]
            for inner in args[:1]:
                n = len(args) if origin is tuple and len(args) > 1 else 1
                out += [[v] * n for v in _bad_values(inner) if not isinstance(v, list)]
    return out


def _leaves(cls: type[BaseModel], prefix: str = ""):
    """(dotted key, bad value) for every numeric setting reachable from ``cls``."""
    for name, field in cls.model_fields.items():
        key = prefix + name
        if key == "sweep":  # a grid of values for other keys, validated trial by trial
            continue
        models = [t for t in _unwrap(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        for m in models:
            yield from _leaves(m, key + ".")
        for v in _bad_values(field.annotation):
            yield key, v


CASES = [(study, key, value) for study in sorted(STUDIES)
         for key, value in _leaves(get_study(study).config)]


def test_the_walk_finds_the_settings():
    keys = {(s, k) for s, k, _ in CASES}
    assert ("induction-heads", "train.batch_size") in keys and ("induction-heads", "world.vocab") in keys
    assert ("induction-heads", "layers") in keys and ("task-vectors", "model.d_model") in keys
    assert len(CASES) > 150


@pytest.mark.parametrize("study,key,value", CASES, ids=[f"{s}:{k}={v!r}" for s, k, v in CASES])
def test_huge_or_non_finite_value_is_refused_naming_the_key(study, key, value):
    with pytest.raises(ConfigError) as e:
        get_study(study).load_config("cpu", {key: value})
    msg = str(e.value)
    assert "\n" not in msg, msg
    section, _, name = key.rpartition(".")
    assert key in msg or (f"{section}:" in msg and name in msg), msg  # a field, or its section's rule
