"""What every probe returns: long rows of metrics (:mod:`iclab.rows`), plus arrays for figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iclab.rows import Rows


@dataclass
class ProbeResult:
    """Rows of metrics and, for figures only, named arrays.

    Attributes
    ----------
    rows : Rows
        The measurements, one per row (a list of :class:`iclab.rows.Row` with queries).
    arrays : dict of str to ndarray
        Arrays a figure needs (e.g. ``"induction_score"`` of shape (layer, head)).
    """

    rows: Rows = field(default_factory=Rows)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.rows, Rows):
            self.rows = Rows(self.rows)

    def tagged(self, **tags: Any) -> "ProbeResult":
        """The same result with ``tags`` (e.g. ``step=100, model="L2"``) set on every row."""
        return ProbeResult(self.rows.tagged(**tags), dict(self.arrays))

    def extend(self, other: "ProbeResult") -> None:
        self.rows.extend(other.rows)
        self.arrays.update(other.arrays)

    def value(self, metric: str, **where: Any) -> float:
        """The single value of ``metric`` among rows matching ``where``; raises if not exactly one."""
        return self.rows.value(metric, **where)
