"""Result rows: one measurement a row, the one schema of every results table, and queries.

Every probe returns rows, the trainer adds its own, a run stores them as
``results.parquet``, and ``iclab results`` queries them all with SQL. The columns are
declared once, here (:class:`Row`); the Parquet/DuckDB schema is derived from them
(:data:`ARROW_SCHEMA`), with ``study`` and ``run`` in front, added by the runs layer.

=========  =======  ===========================================================
column     type     meaning
=========  =======  ===========================================================
probe      str      the probe that measured it (``"induction"``, ``"ictr"``)
metric     str      what was measured (``"induction_score"``, ``"ictr"``)
value      float    the number
layer      int      0-based layer, or None
head       int      0-based head, or None
pos        int      token position, context length or shot count, or None
step       int      training step the model was at, or None for a loaded model
model      str      label of the model measured (``"L2"``, ``"gpt2"``), or None
label      str      a category: topic set ``"R"``, basis ``"2"``, task ``"XOR"``
=========  =======  ===========================================================

:class:`Rows` is a list of rows with the few queries studies and reports need, so that no
study writes its own filters::

    rows.where(metric="td", step=1000).max()
    rows.where(metric="icl_score", model="L2", label=None).series("step")   # (steps, values)
    rows.where(probe="ablation").value("icl_share_removed")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Row:
    """One measurement; see the module docstring for the columns."""

    probe: str
    metric: str
    value: float
    layer: int | None = None
    head: int | None = None
    pos: int | None = None
    step: int | None = None
    model: str | None = None
    label: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "value", float(self.value))
        for name in ("layer", "head", "pos", "step"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, int(v))


ROW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))

#: probes whose rows measure the machine, not the model (training throughput): they differ
#: between runs that are otherwise identical, so comparisons of results leave them out.
TIMING_PROBES = frozenset({"speed"})

_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "int | None": pa.int64(), "str | None": pa.string()}

#: The schema of ``results.parquet`` (and of the ``metrics`` SQL view): ``study``, ``run``, then Row's columns.
ARROW_SCHEMA = pa.schema([("study", pa.string()), ("run", pa.string()),
                          *((f.name, _ARROW_TYPES[f.type]) for f in fields(Row))])


class Rows(list):
    """A list of :class:`Row` with queries; every query returns new Rows or a number.

    ``where(**columns)`` keeps rows whose columns equal the given values (a set or tuple
    means "one of"); ``value`` is the one value left, and raises unless exactly one row
    matches; ``series(x)`` gives ``(x values, values)`` sorted by ``x``.
    """

    def __add__(self, other) -> "Rows":
        return Rows(list.__add__(self, list(other)))

    def where(self, **columns: Any) -> "Rows":
        unknown = set(columns) - set(ROW_COLUMNS)
        if unknown:
            raise KeyError(f"unknown row column(s) {sorted(unknown)}; columns: {', '.join(ROW_COLUMNS)}")

        def keep(r: Row) -> bool:
            for k, v in columns.items():
                got = getattr(r, k)
                if isinstance(v, (set, frozenset, tuple)):
                    if got not in v:
                        return False
                elif got != v:
                    return False
            return True

        return Rows(r for r in self if keep(r))

    def value(self, metric: str | None = None, **columns: Any) -> float:
        """The value of the single row matching ``metric`` and ``columns``."""
        hits = self.where(**columns) if metric is None else self.where(metric=metric, **columns)
        if len(hits) != 1:
            raise LookupError(f"{len(hits)} rows match metric={metric!r} {columns}")
        return hits[0].value

    def values(self) -> np.ndarray:
        """The values, in row order, shape (n,)."""
        return np.array([r.value for r in self], dtype=float)

    def max(self) -> float:
        if not self:
            raise LookupError("max() of no rows")
        return float(max(r.value for r in self))

    def series(self, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """``(xs, values)`` sorted by column ``x``; raises if two rows share an ``x``."""
        pairs = sorted((getattr(r, x), r.value) for r in self)
        xs = [p[0] for p in pairs]
        if len(set(xs)) != len(xs):
            raise LookupError(f"series over {x!r}: several rows share a value of {x!r}; narrow the query first")
        return np.array(xs), np.array([p[1] for p in pairs], dtype=float)

    def unique(self, column: str) -> list:
        """The distinct values of ``column``, in order of first appearance."""
        return list(dict.fromkeys(getattr(r, column) for r in self))

    def tagged(self, **columns: Any) -> "Rows":
        """The same rows with ``columns`` set on each (e.g. ``step=100, model="L2"``)."""
        return Rows(replace(r, **columns) for r in self)

    def without_timing(self) -> "Rows":
        """The rows that do not measure the machine (see :data:`TIMING_PROBES`)."""
        return Rows(r for r in self if r.probe not in TIMING_PROBES)

    def first(self, default: float = float("nan")) -> float:
        """The value of the first row, or ``default`` if there is none."""
        return self[0].value if self else default


def rows_as_dicts(rows: Iterable[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
