"""What every probe returns: long rows of metrics, plus arrays for figures.

One measurement is one :class:`Row`. The columns are fixed so that every run's results
table has the same schema and all runs can be queried together with SQL:

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

The runs layer adds ``study`` and ``run`` when it stores rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np


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


@dataclass
class ProbeResult:
    """Rows of metrics and, for figures only, named arrays.

    Attributes
    ----------
    rows : list of Row
        The measurements, one per row.
    arrays : dict of str to ndarray
        Arrays a figure needs (e.g. ``"induction_score"`` of shape (layer, head)).
    """

    rows: list[Row] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def tagged(self, **tags: Any) -> "ProbeResult":
        """The same result with ``tags`` (e.g. ``step=100, model="L2"``) set on every row."""
        return ProbeResult([replace(r, **tags) for r in self.rows], dict(self.arrays))

    def extend(self, other: "ProbeResult") -> None:
        self.rows.extend(other.rows)
        self.arrays.update(other.arrays)

    def value(self, metric: str, **where: Any) -> float:
        """The single value of ``metric`` among rows matching ``where``; raises if not exactly one."""
        hits = [r for r in self.rows if r.metric == metric
                and all(getattr(r, k) == v for k, v in where.items())]
        if len(hits) != 1:
            raise LookupError(f"{len(hits)} rows match metric={metric!r} {where}")
        return hits[0].value


def rows_as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
