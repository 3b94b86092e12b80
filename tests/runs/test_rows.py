"""The one row schema and its queries: where / value / series / unique / tagged, and the Parquet
schema derived from the Row dataclass."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pyarrow as pa
import pytest

from iclab.rows import ARROW_SCHEMA, ROW_COLUMNS, Row, Rows

ROWS = Rows([Row("icl", "icl_score", -1.0, step=0, model="L2"), Row("icl", "icl_score", -3.0, step=20, model="L2"),
             Row("icl", "icl_score", -2.0, step=10, model="L2"), Row("icl", "icl_score", 0.5, step=0, model="L1"),
             Row("induction", "induction_score", 0.9, layer=1, head=2, step=20, model="L2"),
             Row("speed", "tokens_per_s", 1234.0, step=20, model="L2")])


def test_where_filters_by_equality_and_membership():
    assert len(ROWS.where(model="L2", metric="icl_score")) == 3
    assert [r.step for r in ROWS.where(step=(0, 20), model="L2")] == [0, 20, 20, 20]
    assert ROWS.where(layer=None, metric="icl_score").unique("model") == ["L2", "L1"]
    assert isinstance(ROWS.where(model="L1"), Rows)
    with pytest.raises(KeyError, match="unknown row column"):
        ROWS.where(modle="L2")


def test_value_needs_exactly_one_row():
    assert ROWS.where(model="L1").value("icl_score") == 0.5
    with pytest.raises(LookupError, match="3 rows match"):
        ROWS.value("icl_score", model="L2")
    with pytest.raises(LookupError, match="0 rows match"):
        ROWS.value("nope")


def test_series_sorts_by_x_and_refuses_duplicates():
    steps, values = ROWS.where(model="L2", metric="icl_score").series("step")
    assert steps.tolist() == [0, 10, 20] and values.tolist() == [-1.0, -2.0, -3.0]
    with pytest.raises(LookupError, match="share a value"):
        ROWS.where(metric="icl_score").series("step")


def test_tagged_first_max_and_timing():
    tagged = ROWS.where(model="L1").tagged(label="x")
    assert tagged[0].label == "x" and ROWS[3].label is None
    assert ROWS.where(model="nobody").first() != ROWS.where(model="nobody").first()  # NaN when empty
    assert ROWS.where(metric="icl_score").max() == 0.5
    assert "speed" not in {r.probe for r in ROWS.without_timing()}
    assert isinstance(ROWS.where(model="L1") + ROWS.where(model="L2"), Rows)


def test_the_parquet_schema_is_derived_from_the_row():
    assert ARROW_SCHEMA.names == ["study", "run", *ROW_COLUMNS]
    assert ROW_COLUMNS == tuple(f.name for f in fields(Row))
    assert ARROW_SCHEMA.field("value").type == pa.float64() and ARROW_SCHEMA.field("layer").type == pa.int64()
    r = Row("p", "m", np.float32(0.5), layer=np.int64(2))
    assert type(r.value) is float and type(r.layer) is int
