"""A sweep grid: config keys and the values each takes, expanded into named trials.

A grid maps a dotted config key to a list of values; the trials are the Cartesian
product, in the order the keys are given::

    {"world.arity": [2, 4], "world.r_repeat": [0.2, 0.8]}
    → arity=2,r_repeat=0.2  arity=2,r_repeat=0.8  arity=4,r_repeat=0.2  arity=4,r_repeat=0.8

Keys joined by commas move together (zipped, not crossed): each value is a list with
one entry per key. This ties values that only make sense together, e.g. the number of
sub-topics K to the arity M so that the number of topics stays about equal::

    {"world.arity,world.n_subtopics": [[2, 9], [4, 3]]}  → arity=2,n_subtopics=9  arity=4,n_subtopics=3

A trial's name is ``key=value`` pairs joined by commas, with each key shortened to its
last part when that is unambiguous; it names the trial's directory, so it holds only
letters, digits and ``._=,+-``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from iclab.config import parse_overrides
from iclab.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its directory name and the overrides it applies."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _axes(grid: dict[str, Any]) -> list[tuple[list[str], list[tuple]]]:
    """Validate the grid: (keys, list of value tuples) per axis."""
    if not isinstance(grid, dict):
        raise ConfigError(f"sweep grid must be a mapping of config key to a list of values; got {grid!r}")
    axes = []
    for raw_key, values in grid.items():
        keys = [k.strip() for k in str(raw_key).split(",")]
        if not all(keys) or len(set(keys)) != len(keys):
            raise ConfigError(f"sweep grid key {raw_key!r}: give dotted config keys, comma-separated when zipped")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid {raw_key} = {values!r}: give a non-empty list of values, e.g. [2, 4]")
        if len(keys) == 1:
            tuples = [(v,) for v in values]
        else:
            bad = [v for v in values if not isinstance(v, list) or len(v) != len(keys)]
            if bad:
                raise ConfigError(f"sweep grid {raw_key} = {values!r}: zipped keys take lists of {len(keys)} "
                                  f"values each, e.g. [[2, 9], [4, 3]]; got {bad[0]!r}")
            tuples = [tuple(v) for v in values]
        if len(set(map(repr, tuples))) != len(tuples):
            raise ConfigError(f"sweep grid {raw_key} = {values!r}: values repeat")
        axes.append((keys, tuples))
    all_keys = [k for keys, _ in axes for k in keys]
    dup = sorted({k for k in all_keys if all_keys.count(k) > 1})
    if dup:
        raise ConfigError(f"sweep grid: key {dup[0]!r} is set by more than one axis")
    return axes


def _short_names(keys: list[str]) -> dict[str, str]:
    """Each key's shortest unambiguous suffix (``world.arity`` → ``arity``)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            short = ".".join(parts[-n:])
            if sum(k == short or k.endswith("." + short) for k in keys) == 1:
                out[key] = short
                break
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "+".join(_fmt(v) for v in value)
    return str(value)


def expand_grid(grid: dict[str, Any]) -> list[Trial]:
    """The trials of ``grid`` (Cartesian product over axes, zipped within an axis)."""
    axes = _axes(grid)
    if not axes:
        return []
    short = _short_names([k for keys, _ in axes for k in keys])
    trials = []
    for combo in itertools.product(*(tuples for _, tuples in axes)):
        overrides = {k: v for (keys, _), values in zip(axes, combo) for k, v in zip(keys, values)}
        name = _UNSAFE.sub("_", ",".join(f"{short[k]}={_fmt(v)}" for k, v in overrides.items()))
        trials.append(Trial(name, overrides))
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"sweep grid gives two trials the same name {dup!r}; make the values distinct")
    return trials


def parse_grid(items: list[str] | None) -> dict[str, list]:
    """``["world.arity=[2,4]", "world.arity,world.n_subtopics=[[2,9],[4,3]]"]`` → a grid.

    Values are read as YAML (see :func:`iclab.config.parse_overrides`); a single value
    becomes a one-element list.
    """
    grid = {}
    for key, value in parse_overrides(items).items():
        grid[key] = value if isinstance(value, list) else [value]
    return grid
