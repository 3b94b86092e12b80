"""Damaged files under a runs root are named and skipped, never a traceback.

A truncated ``results.parquet`` or a garbled ``run.json`` anywhere under the root is named in
one warning line, and ``iclab results`` / ``iclab runs`` go on over the other runs. ``iclab
report`` and ``iclab resume`` on a run whose own files are damaged stop with one line naming
the file (exit status 2).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import iclab
from fault_helpers import cli, fake_run, one_line_error, tree
from iclab.errors import DamagedFileWarning, IclabError
from iclab.runs.run import Run


@pytest.fixture
def root(tmp_path):
    """Four runs of three rows each: ``a`` and ``d`` whole, ``b`` with a truncated results.parquet,
    ``c`` with a garbled run.json."""
    root = tmp_path / "runs"
    for name in "abcd":
        fake_run(root, run_id=name, status="failed" if name == "d" else "done")
    b = root / "induction-heads" / "b" / "results.parquet"
    b.write_bytes(b.read_bytes()[: b.stat().st_size // 2])
    (root / "induction-heads" / "c" / "run.json").write_text('{"study": "induction-heads", "run": ')
    return root


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_results_query_runs_over_the_other_runs(root):
    res = cli("results", "select run, count(*) as n from metrics group by run order by run", "--root", str(root),
              "--format", "csv")
    assert res.code == 0, res.stderr
    assert res.stdout.splitlines() == ["run,n", "a,3", "c,3", "d,3"]  # c's rows are whole: only its run.json is not
    lines = _warnings(res.stderr)
    assert len(lines) == 2, res.stderr
    assert any("b/results.parquet" in w and "damaged" in w for w in lines)
    assert any("c/run.json" in w and "damaged" in w for w in lines)
    assert "Traceback" not in res.stderr


def test_runs_view_skips_the_garbled_run_json_and_filters_by_status(root):
    res = cli("results", "select run, status from runs order by run", "--root", str(root), "--format", "csv")
    assert res.stdout.splitlines() == ["run,status", "a,done", "b,done", "d,failed"]
    failed = cli("results", "select run from runs where status = 'failed'", "--root", str(root), "--format", "csv")
    assert failed.stdout.splitlines() == ["run", "d"]


def test_python_api_warns_with_the_file_and_returns_a_frame(root):
    with pytest.warns(DamagedFileWarning) as record:
        df = iclab.results("select run, sum(value) as total from metrics group by run order by run", root)
    assert isinstance(df, pd.DataFrame) and list(df["run"]) == ["a", "c", "d"]
    assert list(df["total"]) == [3.0, 3.0, 3.0]  # 0 + 1 + 2 each
    assert sorted(str(w.message).split()[0].rsplit("/", 2)[-2] for w in record) == ["b", "c"]


def test_runs_listing_names_the_damaged_file_and_lists_the_rest(root):
    res = cli("runs", "--root", str(root))
    assert res.code == 0 and "c/run.json" in res.stderr and len(_warnings(res.stderr)) == 1
    with pytest.warns(DamagedFileWarning):
        df = iclab.list_runs(root)
    assert sorted(df["run"]) == ["a", "b", "d"]
    assert list(iclab.list_runs(root, status="failed")["run"]) == ["d"]
    assert iclab.list_runs(root, study="task-vectors").empty


@pytest.mark.parametrize("name,text,needle", [
    ("run.json", "{garbled", "run.json"),
    ("run.json", "", "run.json"),
    ("config.yaml", "train: {steps: [\n", "config.yaml"),
    ("config.yaml", "train:\n  steps: many\n", "train.steps"),
])
@pytest.mark.parametrize("command", ["report", "resume"])
def test_report_and_resume_name_the_damaged_file(tmp_path, name, text, needle, command):
    run = fake_run(tmp_path / "runs")
    (run / name).write_text(text)
    before = tree(run)
    err = one_line_error(cli(command, str(run)), needle)
    assert str(run / name) in err or needle in err
    assert tree(run) == before


def test_report_names_a_truncated_results_file_and_missing_arrays(tmp_path):
    run = fake_run(tmp_path / "runs")
    one_line_error(cli("report", str(run)), "arrays/L1.npz", "is missing")  # the study's report reads its arrays
    Run(run).save_arrays("L1", x=np.zeros(3))
    npz = run / "arrays" / "L1.npz"
    npz.write_bytes(npz.read_bytes()[:20])
    one_line_error(cli("report", str(run)), "arrays/L1.npz", "damaged")
    parquet = run / "results.parquet"
    parquet.write_bytes(parquet.read_bytes()[:40])
    one_line_error(cli("report", str(run)), "results.parquet", "damaged")
    parquet.unlink()
    one_line_error(cli("report", str(run)), "results.parquet", "missing")


def test_run_handle_names_damaged_files(tmp_path):
    run = Run(fake_run(tmp_path / "runs"))
    assert len(run.to_pandas()) == 3 and list(run.to_pandas().columns)[:3] == ["study", "run", "probe"]
    (run.path / "results.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(IclabError, match="results.parquet is damaged"):
        run.load_rows()
    with pytest.raises(IclabError, match="results.parquet is damaged"):
        run.to_pandas()
    (run.path / "run.json").write_text("[]")
    with pytest.raises(IclabError, match="run.json is damaged"):
        run.meta


def test_results_with_every_file_damaged_is_an_empty_answer_not_a_crash(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, run_id="only")
    (root / "induction-heads" / "only" / "results.parquet").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = iclab.results("select count(*) as n from metrics", root)
    assert int(df["n"][0]) == 0 and len(caught) == 1
