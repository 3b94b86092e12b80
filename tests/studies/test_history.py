"""Checkpoint history (``train.keep_checkpoints``) and probes over it (``iclab probe``).

The known answer: at a step where training itself probed, a probe run later on that step's
saved checkpoint, with the study's own prompts and parameters, gives the same numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

import iclab
from iclab.cli import app
from iclab.config import KeepCheckpoints, TrainConfig
from iclab.errors import ConfigError, IclabError
from iclab.models.build import ModelSpec, build_model
from iclab.runs.run import Run
from iclab.studies import get_study
from iclab.studies.history import _load_model
from iclab.train.checkpoint import checkpoints, load_checkpoint, step_of
from iclab.train.loop import train
from iclab.worlds.induction import RepeatedTokens

INDUCTION = {"layers": [1], "model.d_model": 32, "train.steps": 20, "train.eval_every": 10, "train.ckpt_every": 10,
             "train.keep_checkpoints.every": 5, "probe.n_prompts": 16, "train.warmup": 2}
ICG = {"train.steps": 4, "train.eval_every": 2, "train.ckpt_every": 4, "train.keep_checkpoints": {"every": 2},
       "train.warmup": 0, "model.size": "tiny", "probe.shots": [1, 2], "probe.report_shot": 2, "probe.n_prompts": 6}
BAYES = {"train.steps": 4, "train.eval_every": 2, "train.warmup": 0, "train.ckpt_every": 4,
         "train.keep_checkpoints.every": 2, "world.doc_len": 48, "model.d_model": 16, "model.n_layers": 1,
         "model.max_len": 64, "probe.shots": [0, 1, 4], "probe.lengths": [3, 5], "probe.n_prompts": 8,
         "lstm.d_model": 8}


def _steps(path) -> list[int]:
    return [step_of(p) for p in checkpoints(path)]


@pytest.mark.parametrize("keep, every, want", [
    (2, None, [15, 20]),
    (3, None, [10, 15, 20]),
    (2, 10, [0, 10, 15, 20]),
    (2, 4, [0, 4, 8, 12, 16, 20]),  # every 4 is written besides the ckpt_every (5) ones; 15 was pruned
])
def test_keep_checkpoints_keeps_the_newest_and_every_k(tmp_path, keep, every, want):
    world = RepeatedTokens(vocab=16, seq_len=12, min_segment=3, max_segment=5)
    model = build_model(ModelSpec(family="llama", n_layers=1, d_model=16, n_heads=2, attn_only=True), 17, seed=0)
    cfg = TrainConfig(steps=20, batch_size=4, warmup=0, eval_every=100, ckpt_every=5, device="cpu",
                      keep_checkpoints={"last": keep, "every": every})
    train(model, world, cfg, data_seed=0, ckpt_dir=tmp_path)
    assert _steps(tmp_path) == want


def test_keep_checkpoints_reads_a_count_and_refuses_fewer_than_two():
    assert TrainConfig(keep_checkpoints=7).keep_checkpoints == KeepCheckpoints(last=7)
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        get_study("induction-heads").load_config("cpu", {"train.keep_checkpoints": 1})


@pytest.fixture(scope="module")
def induction_run(tmp_path_factory):
    return iclab.run("induction-heads", "cpu", overrides=INDUCTION, out=tmp_path_factory.mktemp("history"))


def _by_key(rows) -> dict:
    return {(r.metric, r.layer, r.head, r.pos, r.step, r.model, r.label): r.value for r in rows}


def test_induction_scores_over_checkpoints_equal_those_taken_in_training(induction_run):
    results = (induction_run.path / "results.parquet").read_bytes()
    rows = iclab.probe_checkpoints(induction_run.path, "induction")
    assert rows.unique("step") == [0, 5, 10, 15, 20] and rows.unique("model") == ["L1"]
    trained = _by_key(Run(induction_run.path).load_rows().where(probe="induction"))
    later = _by_key(rows)
    assert {k[4] for k in trained} == {0, 10, 20}
    for key, value in trained.items():  # steps 0, 10, 20: the checkpoint is the model that was probed
        assert later[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert len(later) == len(trained) * 5 // 3  # and steps 5, 15 besides
    assert (induction_run.path / "results.parquet").read_bytes() == results  # the run's own rows are untouched
    saved = Run(induction_run.path).load_rows(induction_run.path / "checkpoint-probes" / "induction.parquet")
    assert _by_key(saved) == later


def test_measuring_steps_again_replaces_their_rows_and_sql_sees_them(induction_run):
    icl = iclab.probe_checkpoints(induction_run.path, "icl", {"batch_size": 8}, steps=[0, 20])
    trained = Run(induction_run.path).load_rows().where(probe="icl", label=None)
    assert icl.where(step=20).value("icl_score") == pytest.approx(trained.where(step=20).value("icl_score"), rel=1e-5, abs=1e-6)
    iclab.probe_checkpoints(induction_run.path, "icl", steps=[20])
    df = iclab.results("select step, count(*) as n from checkpoint_probes where probe = 'icl' group by step "
                       "order by step", induction_run.path.parent.parent)
    assert list(df["step"]) == [0, 20] and df["n"].nunique() == 1  # step 20 replaced, not doubled
    n_metrics = iclab.results("select count(*) as n from metrics", induction_run.path.parent.parent)["n"][0]
    assert n_metrics == len(Run(induction_run.path).load_rows())


@pytest.fixture(scope="module")
def icg_run(tmp_path_factory):
    return iclab.run("icg-generalization", "cpu", overrides=ICG, out=tmp_path_factory.mktemp("runs"))


def test_ictr_at_every_shot_over_an_icg_run(icg_run):
    run = icg_run
    rows = iclab.probe_checkpoints(run.path, "ictr")
    trained = _by_key(Run(run.path).load_rows().where(probe="ictr"))
    later = _by_key(rows)
    assert set(rows.unique("step")) == {0, 2, 4}
    assert {k[3] for k in trained if k[4] == 2} == {2}  # in training, step 2 measured the report shot only
    assert {k[3] for k in later if k[4] == 2} == {1, 2}  # the history has every shot at every step
    for key, value in trained.items():
        assert later[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_generic_probes_over_a_study_without_their_recipe(icg_run):
    # ICG has no recipe for induction scores or the logit lens: both run on repeated random
    # tokens of the saved model's vocabulary, the same prompts at every step
    from iclab.studies.history import GENERIC_HALF, GENERIC_PROMPTS, generic_recipe

    induction = iclab.probe_checkpoints(icg_run.path, "induction", steps=[0, 4])
    lens = iclab.probe_checkpoints(icg_run.path, "logit_lens", steps=[4])
    assert set(induction.unique("step")) == {0, 4} and set(induction.unique("model")) == {"tiny"}
    assert {r.metric for r in lens} >= {"lens_logprob", "lens_top1"}
    cfg = get_study("icg-generalization").config_of(Run(icg_run.path))
    model = _load_model(Run(icg_run.path), "tiny")
    load_checkpoint(Run(icg_run.path).ckpt_dir("tiny") / "step-00000004", model)
    probe, prompts = generic_recipe("induction", model.config.vocab_size, cfg.seed, {})
    assert prompts.tokens.shape == (GENERIC_PROMPTS, 2 * GENERIC_HALF)
    direct = _by_key(probe(model.eval(), prompts).tagged(step=4, model="tiny").rows)
    assert _by_key(induction.where(step=4)) == pytest.approx(direct)


def test_attention_patterns_of_the_last_checkpoint_are_the_saved_models(induction_run):
    from iclab.models.load import load_model
    from iclab.probes.attention_patterns import AttentionPatterns
    from iclab.studies.history import _induction_prompts

    rows = iclab.probe_checkpoints(induction_run.path, "attention_patterns", steps=[0, 20])
    cfg = get_study("induction-heads").config_of(Run(induction_run.path))
    model = load_model(str(induction_run.path / "models" / "L1"), device="cpu", tokenizer="none")[0]
    final = _by_key(AttentionPatterns()(model, _induction_prompts(cfg)[1]).tagged(step=20, model="L1").rows)
    later = _by_key(rows.where(step=20))
    assert later.keys() == final.keys() and len(final) == 4 * cfg.model.n_heads
    assert all(later[k] == pytest.approx(v, abs=1e-6) for k, v in final.items())
    assert rows.where(step=0).values().tolist() != rows.where(step=20).values().tolist()


def test_ginc_over_the_transformer_and_lstm_checkpoints_of_a_bayesian_icl_run(tmp_path):
    run = iclab.run("bayesian-icl", "cpu", overrides=BAYES, out=tmp_path)
    trained = Run(run.path).load_rows().where(probe="ginc")
    rows = iclab.probe_checkpoints(run.path, "ginc")
    assert set(rows.unique("model")) == {"transformer", "lstm"} and set(rows.unique("step")) == {0, 2, 4}
    later = _by_key(rows)
    full = {k: v for k, v in _by_key(trained).items() if k[4] in (0, 4)}  # every cell measured in training
    assert full and all(later[k] == pytest.approx(v, abs=1e-6) for k, v in full.items())
    assert len(rows.where(step=2)) == len(rows.where(step=4))  # step 2: every cell, not only the curve's


def test_pairs_without_a_recipe_and_missing_steps_are_one_line_errors(induction_run):
    with pytest.raises(IclabError, match=r"probe 'ictr' has no prompts recipe for study induction-heads "
                                         r"\(recipes: induction-heads: induction, icl, attention_patterns; icg-generalization: ictr"
                                         r".*and on any causal LM trained here: induction, icl, attention_patterns, "
                                         r"logit_lens\)"):
        iclab.probe_checkpoints(induction_run.path, "ictr")
    with pytest.raises(IclabError, match="unknown probe 'inductoin'"):
        iclab.probe_checkpoints(induction_run.path, "inductoin")
    with pytest.raises(ConfigError, match=r"steps \[3\] have no checkpoint of L1 .*saved steps: 0, 5, 10, 15, 20"):
        iclab.probe_checkpoints(induction_run.path, "induction", steps=[3, 5])
    with pytest.raises(ConfigError, match="batch_size"):
        iclab.probe_checkpoints(induction_run.path, "induction", {"batch_size": 0})


def test_command_line_probe_and_runs_disk_column(induction_run, monkeypatch):
    runner = CliRunner()
    res = runner.invoke(app, ["probe", str(induction_run.path), "induction", "--steps", "5,15",
                              "--set", "probe.batch_size=4"])
    assert res.exit_code == 0, res.output
    assert "5, 15" in res.output and "checkpoint_probes" in res.output
    res = runner.invoke(app, ["probe", str(induction_run.path), "induction", "--set", "batch_size=4"])
    assert res.exit_code == 2 and "probe.NAME=VALUE" in res.output
    res = runner.invoke(app, ["probe", str(induction_run.path), "graph"])
    assert res.exit_code == 2 and "no prompts recipe" in res.output and len(res.output.strip().splitlines()) == 1
    df = iclab.list_runs(induction_run.path.parent.parent)
    n_ckpt = 5 + 0  # steps 0, 5, 10, 15, 20
    size = sum(f.stat().st_size for f in (induction_run.path / "checkpoints").rglob("*") if f.is_file())
    assert df["checkpoint_bytes"][0] == size and df["checkpoints"][0].startswith(f"{n_ckpt} × ")
    per = size / n_ckpt / 1e3
    assert df["checkpoints"][0] == f"{n_ckpt} × {per:.3g} kB"
    monkeypatch.setattr("iclab.cli.out", Console(width=160))  # the test's terminal, wide enough for every column
    res = runner.invoke(app, ["runs", "--root", str(induction_run.path.parent.parent)])
    assert res.exit_code == 0 and "checkpoints" in res.output and df["checkpoints"][0] in res.output


def test_the_report_states_the_disk_the_checkpoints_take(induction_run):
    from iclab.runs.store import checkpoint_disk

    n, size = checkpoint_disk(induction_run.path)
    assert n >= 2 and induction_run.meta["checkpoints"] == {"count": n, "bytes": size}
    import json

    sections = json.loads((induction_run.path / "report.json").read_text())["sections"]
    training = next(s for s in sections if s["heading"] == "Training")
    assert f"Checkpoints kept: {n} × " in training["text"]
