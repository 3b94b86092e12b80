import json

import pyarrow.parquet as pq

from helpers import TINY, iclab


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_list_shows_studies_and_presets():
    p = iclab("list")
    assert p.returncode == 0 and "induction-heads" in p.stdout and "cpu" in p.stdout


def test_unknown_study(tmp_path):
    _one_line_error(iclab("run", "inductoin-heads", "--out", str(tmp_path)), "inductoin-heads", "induction-heads")


def test_unknown_preset(tmp_path):
    _one_line_error(iclab("run", "induction-heads", "--preset", "laptop", "--out", str(tmp_path)), "laptop", "cpu")


def test_unknown_key(tmp_path):
    _one_line_error(iclab("run", "induction-heads", "--set", "train.stepz=5", "--out", str(tmp_path)),
                    "train.stepz", "steps")


def test_bad_value(tmp_path):
    _one_line_error(iclab("run", "induction-heads", "--set", "train.lr=-1", "--out", str(tmp_path)),
                    "train.lr", "-1")


def test_model_path_that_does_not_exist(tmp_path):
    _one_line_error(iclab("run", "induction-heads", "--model", str(tmp_path / "nope"), "--out", str(tmp_path)),
                    "nope", "does not exist")


def test_resume_of_a_non_run(tmp_path):
    _one_line_error(iclab("resume", str(tmp_path)), "not a run directory")


def test_run_report_results_end_to_end(tmp_path):
    p = iclab("run", "induction-heads", *TINY, "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    run_dir = next((tmp_path / "induction-heads").iterdir())
    for f in ("config.yaml", "run.json", "results.parquet", "report.html", "report.json",
              "figures/phase_change.png", "figures/induction_heatmap.png", "figures/ablation.png",
              "models/L2/config.json"):
        assert (run_dir / f).is_file(), f
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    table = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert {"study", "run", "probe", "metric", "value", "layer", "head", "pos", "step", "model", "label"} <= set(table[0])
    assert {r["step"] for r in table if r["metric"] == "induction_score"} == {0, 20, 40, 60}

    (run_dir / "report.html").unlink()
    p = iclab("report", str(run_dir))
    assert p.returncode == 0 and (run_dir / "report.html").is_file()

    p = iclab("results", "select count(*) as n from metrics where metric = 'induction_score'", "--root", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert str(4 * 8) in p.stdout  # 4 probe steps x 2 layers x 4 heads
    p = iclab("results", "select study, status from runs", "--root", str(tmp_path))
    assert "done" in p.stdout
    _one_line_error(iclab("results", "select nope from metrics", "--root", str(tmp_path)), "SQL error")


def test_pretrained_path_on_a_saved_tiny_model(tmp_path):
    from iclab.models.build import ModelSpec, build_model

    model = build_model(ModelSpec(family="gpt2", n_layers=2, d_model=32, n_heads=4), 97, seed=0)
    model.save_pretrained(tmp_path / "tiny-gpt2")
    p = iclab("run", "induction-heads", "--model", str(tmp_path / "tiny-gpt2"), "--set", "probe.n_prompts=8",
              "--set", "probe.half=10", "--out", str(tmp_path / "runs"))
    assert p.returncode == 0, p.stderr
    run_dir = next((tmp_path / "runs" / "induction-heads").iterdir())
    rows = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert len([r for r in rows if r["metric"] == "induction_score"]) == 2 * 4
    assert all(r["model"] == str(tmp_path / "tiny-gpt2") for r in rows)
    assert (run_dir / "figures" / "induction_heatmap.png").is_file()
