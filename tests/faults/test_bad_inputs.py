"""Bad input, tried as a new user would: each is refused with one line that names the key or the
file, exit status 2, no traceback, nothing left behind, and within a second, before anything is
allocated.

Every case runs the command line in this process (``cli``); a few run the real entry point in
a subprocess too, and the Python API gets its own cases.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fault_helpers import cli, fake_run, one_line_error, tree
from helpers import ICLAB

TINY = ["--set", "layers=[1]", "--set", "model.d_model=32", "--set", "train.steps=4", "--set", "probe.n_prompts=8"]


def _run(*sets: str) -> list[str]:
    return ["run", "induction-heads", *[a for s in sets for a in ("--set", s)]]


def _preset(tmp: Path, text: str) -> str:
    p = tmp / "preset.yaml"
    p.write_text(text)
    return str(p)


def _model_dir(tmp: Path, config: str | None) -> str:
    d = tmp / "model"
    d.mkdir()
    if config is not None:
        (d / "config.json").write_text(config)
    return str(d)


def _csv(tmp: Path, *lines: str) -> str:
    (tmp / "data.csv").write_text("\n".join(lines) + "\n")
    return str(tmp / "data.csv")


def _a_file(tmp: Path) -> str:
    (tmp / "a-file").write_text("not a directory")
    return str(tmp / "a-file")


def _damaged_run(tmp: Path, name: str, text: str) -> str:
    path = fake_run(tmp / "runs", status="running")
    (path / name).write_text(text)
    return str(path)


# id: (arguments, made from the test's tmp_path -> (args, needles))
CASES = {
    # sizes: a typo of a few zeros
    "huge-batch": lambda t: (_run("train.batch_size=100000000000"), ["train.batch_size", "100000000000", "65536"]),
    "huge-vocab": lambda t: (_run("world.vocab=1000000000000"), ["world.vocab", "4194304"]),
    "huge-width": lambda t: (_run("model.d_model=10000000"), ["model.d_model", "65536"]),
    "huge-depth": lambda t: (_run("layers=[100000]"), ["layers[0]", "100000", "256"]),
    "negative-depth": lambda t: (_run("layers=[-1]"), ["layers[0]", "-1", "greater than or equal to 1"]),
    "no-depth": lambda t: (_run("layers=[]"), ["layers", "at least 1"]),
    "negative-steps": lambda t: (_run("train.steps=-5"), ["train.steps", "-5"]),
    "huge-seed": lambda t: (_run("seed=99999999999999999999"), ["seed", "99999999999999999999"]),
    "negative-seed": lambda t: (_run("seed=-1"), ["seed", "-1"]),
    "huge-seq": lambda t: (_run("world.seq_len=10000000"), ["world.seq_len", "10000000"]),
    "huge-prompts": lambda t: (_run("probe.n_prompts=1000000000"), ["probe.n_prompts"]),
    # a valid config that cannot fit: the estimate against the machine's memory (here: a set limit)
    "too-big-for-memory": lambda t: (_run("train.batch_size=60000", "world.seq_len=512"),
                                     ["needs about", "train.batch_size", "ICLAB_MEMORY_LIMIT"]),
    "too-big-for-real-memory": lambda t: (_run("train.batch_size=65536", "world.seq_len=4096", "world.vocab=65536"),
                                          ["needs about", "TiB", "available on this machine"]),
    # not finite, wrong types, unknown keys
    "nan-lr": lambda t: (_run("train.lr=nan"), ["train.lr", "nan", "finite"]),
    "inf-lr": lambda t: (_run("train.lr=inf"), ["train.lr", "inf"]),
    "inf-steps": lambda t: (_run("train.steps=1e400"), ["train.steps"]),
    "nan-probability": lambda t: (_run("world.p_repeat=.nan"), ["world.p_repeat"]),
    "text-for-int": lambda t: (_run("train.batch_size=many"), ["train.batch_size", "many"]),
    "text-for-workers": lambda t: (_run("train.data_workers=many"), ["train.data_workers", "many", "'auto'"]),
    "text-for-compile": lambda t: (_run("train.compile=maybe"), ["train.compile = 'maybe'", "true, false or 'auto'"]),
    "list-for-int": lambda t: (_run("train.steps=[1, 2]"), ["train.steps"]),
    "text-for-list": lambda t: (_run("layers=abc"), ["layers", "abc"]),
    "beta-out-of-range": lambda t: (_run("train.betas=[0.9, 2]"), ["train.betas[1]", "2"]),
    "unknown-device": lambda t: (_run("train.device=tpu"), ["train.device", "tpu", "cpu"]),
    "unknown-key": lambda t: (_run("train.stepz=5"), ["train.stepz", "steps"]),
    "unknown-section": lambda t: (_run("trian.steps=5"), ["trian", "train"]),
    "section-as-value": lambda t: (_run("train=5"), ["train", "5"]),
    "into-a-value": lambda t: (_run("train.steps.x=1"), ["train.steps", "is a value"]),
    "cross-field-rule": lambda t: (_run("world.max_segment=30"), ["max_segment"]),
    "not-key-value": lambda t: (["run", "induction-heads", "--set", "train.steps"], ["train.steps", "key.sub=value"]),
    "empty-key": lambda t: (["run", "induction-heads", "--set", "=5"], ["=5", "key.sub=value"]),
    # names and presets
    "unknown-study": lambda t: (["run", "inductoin-heads"], ["inductoin-heads", "induction-heads"]),
    "unknown-preset": lambda t: (["run", "induction-heads", "--preset", "laptop"], ["laptop", "cpu"]),
    "missing-preset-file": lambda t: (["run", "induction-heads", "--preset", str(t / "nope.yaml")], ["nope.yaml"]),
    "malformed-yaml-preset": lambda t: (["run", "induction-heads", "--preset", _preset(t, "train: [steps: 5\n")],
                                        ["preset.yaml", "not valid YAML", "line"]),
    "list-preset": lambda t: (["run", "induction-heads", "--preset", _preset(t, "- 1\n- 2\n")],
                              ["preset.yaml", "list", "mapping"]),
    "preset-unknown-key": lambda t: (["run", "induction-heads", "--preset", _preset(t, "colour: red\n")],
                                     ["colour", "train"]),
    "preset-nan": lambda t: (["run", "induction-heads", "--preset", _preset(t, "train:\n  lr: .nan\n")],
                             ["train.lr", "finite"]),
    "preset-negative-size": lambda t: (["run", "induction-heads", "--preset", _preset(t, "world:\n  vocab: -3\n")],
                                       ["world.vocab", "-3"]),
    # paths
    "out-is-a-file": lambda t: (["run", "induction-heads", *TINY, "--out", _a_file(t)], ["a-file", "is a file"]),
    "out-inside-a-file": lambda t: (["run", "induction-heads", *TINY, "--out", _a_file(t) + "/runs"],
                                    ["a-file", "which is a file"]),
    "model-missing": lambda t: (["run", "induction-heads", "--model", str(t / "nope")], ["nope", "does not exist"]),
    "model-is-a-file": lambda t: (["run", "induction-heads", "--model", _a_file(t)], ["a-file", "config.json"]),
    "model-without-config": lambda t: (["run", "induction-heads", "--model", _model_dir(t, None)],
                                       ["model", "no config.json"]),
    "model-garbled-config": lambda t: (["run", "induction-heads", "--model", _model_dir(t, "{not json")],
                                       ["model", "could not be loaded", "config.json"]),
    "resume-not-a-run": lambda t: (["resume", str(t)], ["not a run directory"]),
    "resume-missing": lambda t: (["resume", str(t / "nope")], ["nope", "does not exist"]),
    "resume-a-file": lambda t: (["resume", _a_file(t)], ["a-file", "is a file"]),
    "report-not-a-run": lambda t: (["report", str(t)], ["not a run directory"]),
    "resume-garbled-run-json": lambda t: (["resume", _damaged_run(t, "run.json", '{"study": "induc')],
                                          ["run.json", "damaged"]),
    "report-garbled-run-json": lambda t: (["report", _damaged_run(t, "run.json", "\x00\x01garbage")],
                                          ["run.json", "damaged"]),
    "resume-run-json-not-a-record": lambda t: (["resume", _damaged_run(t, "run.json", "[1, 2]")],
                                               ["run.json", "no run record"]),
    "resume-garbled-config": lambda t: (["resume", _damaged_run(t, "config.yaml", "train: [steps\n")],
                                        ["config.yaml", "damaged"]),
    "resume-config-bad-value": lambda t: (["resume", _damaged_run(t, "config.yaml", "train:\n  steps: -1\n")],
                                          ["config.yaml", "train.steps", "-1"]),
    "resume-config-not-a-mapping": lambda t: (["resume", _damaged_run(t, "config.yaml", "just text\n")],
                                              ["config.yaml", "str"]),
    "results-unknown-format": lambda t: (["results", "select 1", "--root", str(t), "--format", "xml"],
                                         ["--format", "xml", "parquet"]),
    "results-parquet-to-stdout": lambda t: (["results", "select 1", "--root", str(t), "--format", "parquet"],
                                            ["--output"]),
    "results-missing-root": lambda t: (["results", "select 1", "--root", str(t / "nope")], ["nope", "does not exist"]),
    "results-root-is-a-file": lambda t: (["results", "select 1", "--root", _a_file(t)], ["a-file", "is a file"]),
    "results-output-is-a-dir": lambda t: (["results", "select 1", "--root", str(t), "--format", "csv", "--output",
                                           str(t)], ["--output", "is a directory"]),
    "results-bad-sql": lambda t: (["results", "select nope from metrics", "--root", str(t)], ["SQL error", "nope"]),
    "runs-unknown-study": lambda t: (["runs", "--root", str(t), "--study", "nope"], ["nope", "induction-heads"]),
    "runs-root-is-a-file": lambda t: (["runs", "--root", _a_file(t)], ["a-file", "is a file"]),
    # labelled data and sentence encoders (label-semantics, demo-selection)
    "labelled-data-missing": lambda t: (["run", "label-semantics", "--set", f"data.path={t / 'nope.csv'}"],
                                        ["data.path", "nope.csv", "no such file"]),
    "labelled-data-no-text-column": lambda t: (["run", "label-semantics", "--set",
                                                f"data.path={_csv(t, 'sentence,label', 'a,x')}"],
                                               ["data.path", "no column 'text'", "sentence, label"]),
    "labelled-data-one-label": lambda t: (["run", "demo-selection", "--set",
                                           f"data.path={_csv(t, 'text,label', 'a,x', 'b,x')}"],
                                          ["data.path", "only one label"]),
    "encoder-path-not-a-model": lambda t: (["run", "demo-selection", "--set", f"selection.encoder_path={t}"],
                                           ["selection.encoder_path", "no config.json"]),
    "models-path-missing": lambda t: (["run", "label-semantics", "--set", f"models=[{t / 'nope'}]"],
                                      ["models", "nope", "does not exist"]),
    "sweep-unknown-key": lambda t: (["sweep", "induction-heads", "--grid", "train.stepz=[1,2]", "--out",
                                     str(t / "out")], ["train.stepz"]),
    "sweep-huge-value": lambda t: (["sweep", "induction-heads", "--grid", "train.batch_size=[8,100000000]", "--out",
                                    str(t / "out")], ["train.batch_size", "100000000"]),
    "sweep-no-workers": lambda t: (["sweep", "induction-heads", "--grid", "seed=[1,2]", "--workers", "0", "--out",
                                    str(t / "out")], ["workers", "0"]),
}


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_naming_it_and_leaves_nothing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default --out of "runs" would land here
    args, needles = CASES[case](tmp_path)
    env = {"ICLAB_MEMORY_LIMIT": "1GiB"} if case == "too-big-for-memory" else {}
    before = tree(tmp_path)
    res = cli(*args, env=env)
    one_line_error(res, *needles)
    assert tree(tmp_path) == before, "a refused command changed files"
    assert res.seconds < 1.0, f"refused after {res.seconds:.2f} s"


@pytest.mark.parametrize("args,needle", [
    (["run", "induction-heads", "--set", "train.batch_size=100000000000"], "train.batch_size"),
    (["resume", "."], "not a run directory"),
])
def test_the_real_entry_point_prints_one_line_too(args, needle, tmp_path):
    import iclab

    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(iclab.__file__).resolve().parents[1])}  # this iclab, from any directory
    p = subprocess.run([*ICLAB, *args, *(["--out", str(tmp_path / "out")] if args[0] == "run" else [])],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.strip().startswith("error:")
    assert len(p.stderr.strip().splitlines()) == 1 and needle in p.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the Python API


def test_api_refuses_before_making_a_run(tmp_path):
    import math

    import iclab
    from iclab.errors import ConfigError, IclabError

    bad = [({"train.batch_size": 10**11}, "train.batch_size"), ({"train.lr": math.nan}, "train.lr"),
           ({"train.lr": math.inf}, "train.lr"), ({"layers": "abc"}, "layers"), ({"layers": [1.5]}, "layers[0]"),
           ({"model.d_model": True}, None), ({"world": {"vocab": 0}}, "world.vocab")]
    for overrides, key in bad:
        if key is None:  # a bool where an int goes: pydantic takes True as 1, too small for d_model
            key = "model.d_model"
        with pytest.raises(ConfigError) as e:
            iclab.run("induction-heads", overrides=overrides, out=tmp_path / "runs")
        assert key in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "f").write_text("")
    with pytest.raises(IclabError, match="is a file"):
        iclab.run("induction-heads", overrides={"train.steps": 1}, out=tmp_path / "f")
    with pytest.raises(IclabError, match="not a run directory"):
        iclab.resume(tmp_path)
    with pytest.raises(IclabError, match="not a run directory"):
        iclab.report(tmp_path / "nope")
    with pytest.raises(IclabError, match="does not exist"):
        iclab.results("select 1", root=tmp_path / "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_refused_run_with_a_model_leaves_no_directory(tmp_path):
    res = cli("run", "induction-heads", "--model", "/nope", "--out", str(tmp_path / "runs"))
    one_line_error(res, "/nope")
    assert not (tmp_path / "runs").exists()


def test_memory_message_gives_the_estimate_and_the_machine(tmp_path):
    res = cli(*_run("train.batch_size=60000", "world.seq_len=512"), "--out", str(tmp_path),
              env={"ICLAB_MEMORY_LIMIT": "2GiB"})
    err = one_line_error(res, "activations", "2.0 GiB", "set by ICLAB_MEMORY_LIMIT")
    assert "GiB (" in err  # the estimate with its parts
    ok = cli("results", "select 1", "--root", str(tmp_path), env={"ICLAB_MEMORY_LIMIT": "off"})
    assert ok.code == 0
    assert json.loads(cli("results", "select 1 as a", "--root", str(tmp_path), "--format", "json").stdout) == [{"a": 1}]


def test_a_sweep_trial_too_big_for_memory_is_refused_before_the_sweep_starts(tmp_path):
    res = cli("sweep", "induction-heads", "--grid", "train.batch_size=[8,60000]",
              "--out", str(tmp_path / "out"), env={"ICLAB_MEMORY_LIMIT": "2GiB"})
    one_line_error(res, "sweep trial 'batch_size=60000'", "needs about")
    assert not (tmp_path / "out").exists()
