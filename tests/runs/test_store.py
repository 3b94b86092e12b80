"""The runs store: results as DataFrames, exports, the runs listing, and SQL that cannot leave
the runs root."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import iclab
from iclab.cli import app
from iclab.config import to_yaml
from iclab.errors import IclabError
from iclab.rows import Row
from iclab.runs.report import Report, Section, Table
from iclab.runs.run import Run
from iclab.runs.store import headline
from iclab.studies import get_study


def _run(root: Path, run_id: str, status: str = "done", values=(1.0, 2.0, 3.0), study: str = "induction-heads",
         created: str = "2026-01-01T00:00:00") -> Run:
    cfg = get_study(study).load_config("cpu")
    run = Run.create_at(root / study / run_id, study, to_yaml(cfg), {"preset": "cpu", "status": status,
                                                                     "created": created})
    run.save_rows([Row("p", "m", v, step=i, model="L1") for i, v in enumerate(values)])
    return run


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", created="2026-01-01T00:00:00")
    _run(root, "b", status="failed", values=(5.0,), created="2026-01-02T00:00:00")
    _run(root, "c", study="task-vectors", values=(7.0, 8.0), created="2026-01-03T00:00:00")
    return root


def invoke(*args: str):
    res = CliRunner(env={"ICLAB_NO_PROGRESS": "1"}).invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res


def test_results_is_a_dataframe(root):
    df = iclab.results("select run, sum(value) as total from metrics group by run order by run", root)
    assert isinstance(df, pd.DataFrame)
    assert df.to_dict("list") == {"run": ["a", "b", "c"], "total": [6.0, 5.0, 15.0]}


def test_run_to_pandas_has_the_rows_with_study_and_run(root):
    df = Run(root / "induction-heads" / "a").to_pandas()
    assert list(df.columns) == ["study", "run", "probe", "metric", "value", "layer", "head", "pos", "step", "model",
                                "label"]
    assert df["value"].tolist() == [1.0, 2.0, 3.0] and set(df["run"]) == {"a"}
    assert len(Run(root / "induction-heads" / "a").load_rows()) == 3  # the Rows API stays
    empty = Run.create_at(root / "x" / "empty", "x", "seed: 0\n", {})
    assert empty.to_pandas().empty and list(empty.to_pandas().columns)[:2] == ["study", "run"]


def test_status_filter_in_sql_and_in_the_listing(root):
    assert list(iclab.results("select run from runs where status = 'failed'", root)["run"]) == ["b"]
    assert list(iclab.list_runs(root, status="failed")["run"]) == ["b"]
    assert list(iclab.list_runs(root)["run"]) == ["c", "b", "a"]  # newest first
    assert list(iclab.list_runs(root, study="task-vectors")["run"]) == ["c"]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "table"])
def test_export_formats_written_to_a_file(root, tmp_path, fmt):
    out = tmp_path / "exports" / f"m.{fmt}"
    res = invoke("results", "select run, value from metrics order by run, value", "--root", str(root), "--format",
                 fmt, "--output", str(out))
    assert res.exit_code == 0, res.stderr
    assert "6 rows written" in res.stderr
    if fmt == "csv":
        assert pd.read_csv(out)["value"].tolist() == [1.0, 2.0, 3.0, 5.0, 7.0, 8.0]
    elif fmt == "json":
        assert [r["value"] for r in json.loads(out.read_text())] == [1.0, 2.0, 3.0, 5.0, 7.0, 8.0]
    elif fmt == "parquet":
        assert pd.read_parquet(out)["run"].tolist() == ["a"] * 3 + ["b", "c", "c"]
    else:
        assert out.read_text().splitlines()[0].split() == ["run", "value"]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left beside it


def test_export_to_stdout(root):
    csv = invoke("results", "select run, value from metrics where run = 'b'", "--root", str(root), "--format", "csv")
    assert csv.stdout == "run,value\nb,5.0\n"
    js = invoke("results", "select run, value from metrics where run = 'b'", "--root", str(root), "--format", "json")
    assert json.loads(js.stdout) == [{"run": "b", "value": 5.0}]
    table = invoke("results", "select run, value from metrics where run = 'b'", "--root", str(root))
    assert "run" in table.stdout and "5" in table.stdout


def test_export_is_atomic_an_old_file_survives_a_failed_write(root, tmp_path, monkeypatch):
    out = tmp_path / "m.csv"
    out.write_text("old\n")

    def broken(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    res = invoke("results", "select 1", "--root", str(root), "--format", "csv", "--output", str(out))
    assert res.exit_code == 2 and res.stderr.strip() == f"error: --output '{out}' cannot be written: disk full"
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir() if p.name != "runs"] == ["m.csv"]


def test_runs_command_lists_study_status_date_and_headline(root):
    res = invoke("runs", "--root", str(root))
    assert res.exit_code == 0, res.stderr
    for text in ("induction-heads", "task-vectors", "failed", "done", "2026-01-03", "3 rows", "3 run(s)"):
        assert text in res.stdout, text
    only = invoke("runs", "--root", str(root), "--status", "failed")
    assert "1 run(s)" in only.stdout and "task-vectors" not in only.stdout
    Run(root / "induction-heads" / "b").update_meta(error="RuntimeError: out of patience\nmore lines")
    assert list(iclab.list_runs(root, status="failed")["headline"]) == ["RuntimeError: out of patience"]


def test_headline_is_the_first_float_of_the_first_report_table(root):
    run = Run(root / "induction-heads" / "a")
    assert headline(run.path) == "3 rows"
    Report("t", "s", [Section("Summary", tables=[Table(["model", "params", "best score"],
                                                       [["L2", 1234, 0.912], ["L1", 99, 0.1]])])]).save(run.path)
    assert headline(run.path) == "L2 · best score 0.912"
    assert headline(root / "nope") == ""


@pytest.mark.parametrize("sql", [
    "copy (select 42 as x) to '{tmp}/written.csv'",
    "copy metrics to '{tmp}/written.parquet' (format parquet)",
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from read_parquet('{root}/induction-heads/a/results.parquet')",
    "copy (select 1 as value) to '{root}/induction-heads/a/results.parquet' (format csv, use_tmp_file false)",
    "attach '{tmp}/other.duckdb'",
    "install httpfs",
    "set enable_external_access = true",
    "select * from glob('/etc/*')",
])
def test_sql_cannot_read_or_write_files(root, tmp_path, sql):
    sql = sql.format(tmp=tmp_path, root=root)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    res = invoke("results", sql, "--root", str(root))
    err = res.stderr.strip()
    assert res.exit_code == 2 and err.startswith("error: SQL error") and len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    with pytest.raises(IclabError, match="SQL error"):
        iclab.results(sql, root)


def test_normal_queries_still_work_after_the_lockdown(root):
    df = iclab.results("with t as (select run, avg(value) v from metrics group by run) "
                       "select r.study, t.v from t join runs r using (run) order by t.v", root)
    assert df["v"].tolist() == [2.0, 5.0, 7.5]
    assert iclab.results("create table x as select 1 as a", root).shape[0] == 1  # in memory only
