"""Tests of sweeps: grid expansion, failed trials recorded, finished trials skipped on a re-run.

Most tests run a cheap study defined in this module (registered for the test with
monkeypatch): it squares ``x`` and fails on ``fail_on``. One test runs the real
icg-generalization study with tiny trials to exercise its sweep report.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from typer import Typer
from typer.testing import CliRunner

import iclab.studies
from iclab.config import Frozen
from iclab.errors import ConfigError, IclabError
from iclab.rows import Row
from iclab.runs.report import Report, Section
from iclab.studies import StudyEntry
from iclab.studies.study import Study
from iclab.sweep import expand_grid, run_sweep
from iclab.sweep.cli import sweep_cmd
from iclab.sweep.grid import parse_grid

# ---------------------------------------------------------------- a cheap study


class CheapConfig(Frozen):
    seed: int = 0
    x: int = 0
    fail_on: int | None = None
    sweep: dict[str, list] = {}


CALLS: list[int] = []


def measure(cfg: CheapConfig, run, model_name=None) -> None:
    CALLS.append(cfg.x)
    if cfg.x == cfg.fail_on:
        raise RuntimeError(f"x = {cfg.x} is cursed")
    run.save_rows([Row("cheap", "square", cfg.x ** 2)])


def report(cfg: CheapConfig, run) -> Report:
    return Report("cheap", f"x = {cfg.x}", [Section("x", str(run.load_rows().value("square")))])


STUDY = Study("cheap", config=CheapConfig, measure=measure, report=report)


@pytest.fixture
def cheap(tmp_path, monkeypatch):
    """Register the cheap study with a preset whose grid is x ∈ {1, 2, 3}, failing on 2."""
    configs = tmp_path / "configs"
    (configs / "cheap").mkdir(parents=True)
    (configs / "cheap" / "cpu.yaml").write_text("x: 0\nfail_on: 2\nsweep:\n  x: [1, 2, 3]\n")
    monkeypatch.setenv("ICLAB_CONFIGS", str(configs))
    monkeypatch.setitem(iclab.studies.STUDIES, "cheap", StudyEntry("cheap", "a cheap test study", __name__))
    CALLS.clear()
    return tmp_path / "runs"


# ---------------------------------------------------------------- grid


def test_grid_is_the_product_in_key_order_with_short_names():
    trials = expand_grid({"world.arity": [2, 4], "world.r_repeat": [0.2, 0.8]})
    assert [t.name for t in trials] == ["arity=2,r_repeat=0.2", "arity=2,r_repeat=0.8",
                                        "arity=4,r_repeat=0.2", "arity=4,r_repeat=0.8"]
    assert trials[1].overrides == {"world.arity": 2, "world.r_repeat": 0.8}


def test_zipped_keys_move_together():
    trials = expand_grid({"world.arity,world.n_subtopics": [[2, 9], [4, 3]], "model.size": ["mini"]})
    assert [t.overrides for t in trials] == [
        {"world.arity": 2, "world.n_subtopics": 9, "model.size": "mini"},
        {"world.arity": 4, "world.n_subtopics": 3, "model.size": "mini"}]
    assert trials[0].name == "arity=2,n_subtopics=9,size=mini"


def test_ambiguous_short_names_keep_their_section_and_names_are_safe():
    trials = expand_grid({"a.seed": [1], "b.seed": [2], "probe.shots": [[1, 5]], "name": ["x/y"]})
    assert trials[0].name == "a.seed=1,b.seed=2,shots=1+5,name=x_y"


@pytest.mark.parametrize("grid, match", [
    ({"x": []}, "non-empty list"),
    ({"x": 3}, "non-empty list"),
    ({"x,y": [[1, 2], [3]]}, "lists of 2"),
    ({"x": [1, 1]}, "repeat"),
    ({"x": [1], "x,y": [[1, 2]]}, "more than one axis"),
])
def test_bad_grids_name_the_key(grid, match):
    with pytest.raises(ConfigError, match=match):
        expand_grid(grid)


def test_parse_grid_reads_yaml_values():
    assert parse_grid(["world.arity=[2,4]", "a,b=[[1,2],[3,4]]", "train.lr=1e-3"]) == \
        {"world.arity": [2, 4], "a,b": [[1, 2], [3, 4]], "train.lr": [0.001]}


# ---------------------------------------------------------------- running sweeps


def test_failed_trial_is_recorded_and_the_sweep_goes_on(cheap):
    res = run_sweep("cheap", "cpu", out=cheap)
    assert CALLS == [1, 2, 3]
    assert [t.status for t in res.trials] == ["done", "failed", "done"]
    assert [t.name for t in res.failed] == ["x=2"] and "cursed" in res.failed[0].error
    assert res.path.parent == cheap / "cheap" and res.path.name.startswith("cpu-")
    state = json.loads((res.path / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["done", "failed", "done"]
    failed_meta = json.loads((res.path / "x=2" / "run.json").read_text())
    assert failed_meta["status"] == "failed" and "cursed" in failed_meta["error"]
    done_meta = json.loads((res.path / "x=3" / "run.json").read_text())
    assert done_meta["status"] == "done" and done_meta["run"] == f"{res.path.name}/x=3"
    assert (res.path / "x=3" / "results.parquet").is_file() and (res.path / "x=3" / "report.html").is_file()
    page = (res.path / "report.html").read_text()
    assert "x=1" in page and "cursed" in page and "1 failed" in page


def test_rerun_skips_finished_trials_and_retries_failed_ones(cheap):
    first = run_sweep("cheap", "cpu", out=cheap)
    CALLS.clear()
    again = run_sweep("cheap", "cpu", out=cheap)
    assert again.path == first.path
    assert CALLS == [2]  # only the failed trial ran again
    assert [t.status for t in again.trials] == ["done", "failed", "done"]
    CALLS.clear()
    fixed = run_sweep("cheap", "cpu", overrides={"fail_on": None}, out=cheap)
    assert fixed.path != first.path and CALLS == [1, 2, 3] and not fixed.failed


def test_interrupted_trial_resumes_in_its_directory(cheap):
    res = run_sweep("cheap", "cpu", grid={"x": [5]}, out=cheap)
    meta_path = res.path / "x=5" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "status": "running"}))  # as if the sweep was killed
    CALLS.clear()
    again = run_sweep("cheap", "cpu", grid={"x": [5]}, out=cheap)
    assert CALLS == [5] and again.trials[0].status == "done"
    assert sorted(p.name for p in again.path.iterdir() if p.is_dir()) == ["x=5"]


def test_command_line_grid_replaces_the_preset_axis(cheap):
    res = run_sweep("cheap", "cpu", grid={"x": [7, 8]}, out=cheap, name="mine")
    assert res.path == cheap / "cheap" / "mine" and CALLS == [7, 8]
    assert yaml.safe_load((res.path / "x=7" / "config.yaml").read_text())["x"] == 7


def test_a_bad_trial_config_fails_before_anything_runs(cheap):
    with pytest.raises(ConfigError, match="trial 'x=oops'.*x"):
        run_sweep("cheap", "cpu", grid={"x": [1, "oops"]}, out=cheap)
    assert CALLS == [] and not (cheap / "cheap").exists()


def test_reusing_a_sweep_name_for_other_configs_is_refused(cheap):
    run_sweep("cheap", "cpu", grid={"x": [1]}, out=cheap, name="same")
    with pytest.raises(ConfigError, match="different config"):
        run_sweep("cheap", "cpu", grid={"x": [1]}, overrides={"seed": 3}, out=cheap, name="same")


def test_no_grid_and_bad_names_are_user_errors(cheap, tmp_path):
    (tmp_path / "configs" / "cheap" / "nogrid.yaml").write_text("x: 1\n")
    with pytest.raises(ConfigError, match="no sweep grid"):
        run_sweep("cheap", "nogrid", out=cheap)
    with pytest.raises(ConfigError, match="sweep name"):
        run_sweep("cheap", "cpu", out=cheap, name="../escape")


def test_ray_without_ray_installed_is_a_clear_error(cheap, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    with pytest.raises(IclabError, match=r"pip install 'iclab\[ray\]'"):
        run_sweep("cheap", "cpu", out=cheap, executor="ray")
    assert not (cheap / "cheap").exists()


def test_command_line(cheap):
    app = Typer()
    app.command("sweep")(sweep_cmd)
    app.command("other")(lambda: None)  # two commands, so the name `sweep` is part of the call
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", "cheap", "--out", str(cheap), "--grid", "x=[1,3]"])
    assert res.exit_code == 0, res.output
    assert "2 of 2 trials done" in res.output
    res = runner.invoke(app, ["sweep", "cheap", "--out", str(cheap)])
    assert res.exit_code == 1 and "1 failed: x=2" in res.output
    res = runner.invoke(app, ["sweep", "cheep", "--out", str(cheap)])
    assert res.exit_code == 2 and "unknown study 'cheep'" in res.output
    res = runner.invoke(app, ["sweep", "cheap", "--out", str(cheap), "--set", "y=1"])
    assert res.exit_code == 2 and "unknown key 'y'" in res.output


# ---------------------------------------------------------------- the ICG study's sweep report


def test_icg_sweep_with_tiny_trials_writes_the_grid_figures(tmp_path):
    tiny = {"train.steps": 2, "train.eval_every": 1, "train.warmup": 0, "model.size": "tiny",
            "probe.shots": [1, 2], "probe.report_shot": 2, "probe.n_prompts": 6}
    res = run_sweep("icg-generalization", "cpu", overrides=tiny, out=tmp_path,
                    grid={"world.arity,world.n_subtopics": [[2, 9], [4, 3]], "world.r_repeat": [0.25, 0.75]})
    assert not res.failed, [t.error for t in res.failed]
    assert len(res.trials) == 4
    for f in ("sweep_heatmap.png", "sweep_ictr_vs_k.png", "sweep_phase.png"):
        assert (res.path / "figures" / f).is_file(), f
    report = json.loads((res.path / "report.json").read_text())
    assert [s["heading"] for s in report["sections"]][:3] == ["Trials", "ICTR over the grid", "Heat map over M × r_R"]
    from iclab.api import results

    df = results("select run, count(*) as n from metrics where probe = 'ictr' group by run order by run", tmp_path)
    assert list(df["run"]) == sorted(f"{res.path.name}/{t.name}" for t in res.trials)


@pytest.mark.slow
def test_process_pool_runs_registered_studies(tmp_path):
    tiny = {"layers": [1], "model.d_model": 32, "train.steps": 20, "train.eval_every": 10, "train.ckpt_every": 10,
            "probe.n_prompts": 16, "train.warmup": 2}
    res = run_sweep("induction-heads", "cpu", overrides=tiny, grid={"seed": [1, 2]}, out=tmp_path, workers=2)
    assert [t.status for t in res.trials] == ["done", "done"]
    assert all((Path(t.path) / "results.parquet").is_file() for t in res.trials)


def test_icg_heat_maps_are_grouped_by_model_and_by_axes_other_than_M_and_r():
    from iclab.studies.icg_generalization.sweep import _group_label

    values = {"world.arity": 2, "world.r_repeat": 0.5, "world.gamma": 0.7, "model.window": 8}
    assert _group_label({"size": "mini", "window": 8}, values) == "mini W8 gamma=0.7"
    assert _group_label({"size": "XS", "n_heads": 2}, {"world.arity": 4}) == "XS H2"


def test_rerun_keeps_the_recorded_time_of_skipped_trials(cheap):
    first = run_sweep("cheap", "cpu", grid={"x": [4]}, out=cheap)
    again = run_sweep("cheap", "cpu", grid={"x": [4]}, out=cheap)
    assert again.trials[0].seconds == first.trials[0].seconds is not None
