"""Label-semantics study: the prompts of each condition, the pretrained part on tiny saved models
(several: the scale curve), a user's data file, the trained part on the label-map world, and
findings written from the stored numbers. Numbers are meaningless at this size; every step runs."""

from __future__ import annotations

import numpy as np
import pytest

import iclab
from helpers import check_report_rebuilds
from iclab.errors import ConfigError, InputError
from iclab.models.build import ModelSpec, build_model
from iclab.rows import Row
from iclab.runs.run import Run
from iclab.studies.label_semantics.conditions import cases, zero_shot_cases
from iclab.studies.label_semantics.report import report
from iclab.studies.label_semantics.trained import trained_prompts
from iclab.tasks.labelled import LabelledSet
from iclab.worlds.label_map import LabelMapWorld

SET = LabelledSet("toy", ("good day", "bad day", "fine cake", "awful cake"), (0, 1, 0, 1), ("positive", "negative"),
                  "Review:", "Sentiment:")
FAST = {"data.tasks": ["sentiment", "topic"], "probe.shots": [2], "probe.n_queries": 5, "probe.n_draws": 1,
        "probe.batch_size": 64}


def test_each_condition_writes_its_documented_prompt():
    rng = np.random.default_rng(0)
    conds = ["gold", "random", "flipped", "unrelated", "no-labels", "ood-inputs"]
    got = {c.group.split("/")[1]: c for c in cases(SET, conds, 2, np.array([0]), 1, rng, ["foo", "bar"],
                                                    ["o one", "o two"])}
    gold = got["gold"].text
    demos = gold.split("\n\n")[:-1]
    assert gold.endswith("Review: good day\nSentiment:") and len(demos) == 2
    inputs = [d.split("\n")[0] for d in demos]
    gold_labels = [d.split("\n")[1] for d in demos]
    assert all(g == f"Sentiment: {'positive' if i in ('Review: fine cake',) else 'negative'}"
               for i, g in zip(inputs, gold_labels))
    flipped = [d.split("\n")[1] for d in got["flipped"].text.split("\n\n")[:-1]]
    swap = {"Sentiment: positive": "Sentiment: negative", "Sentiment: negative": "Sentiment: positive"}
    assert flipped == [swap[g] for g in gold_labels]
    sul = [d.split("\n")[1] for d in got["unrelated"].text.split("\n\n")[:-1]]
    assert sul == [g.replace("positive", "foo").replace("negative", "bar") for g in gold_labels]
    assert got["unrelated"].candidates == ("foo", "bar")
    assert got["no-labels"].text == "\n\n".join([*inputs, "Review: good day\nSentiment:"])
    ood = got["ood-inputs"].text.split("\n\n")[:-1]
    assert all(d.split("\n")[0] in ("Review: o one", "Review: o two") for d in ood)
    assert got["flipped"].targets == {"accuracy": 0, "context_accuracy": 1} and got["gold"].targets == {"accuracy": 0}
    assert "Review: good day" not in "\n".join(demos)  # the query is never its own demonstration
    (z,) = zero_shot_cases(SET, np.array([3]))
    assert z.text == "Review: awful cake\nSentiment:" and z.targets == {"accuracy": 1}


def test_trained_prompts_follow_the_world():
    w = LabelMapWorld(n_inputs=10, n_classes=2, n_ood_inputs=4, pairs=8)
    p = trained_prompts(w, ["gold", "flipped", "unrelated", "no-labels", "ood-inputs"], [3], 6,
                        np.random.default_rng(0))
    assert sorted(p) == [0, 3]
    c = w.classes()
    three = p[3]
    ids, groups = three.ids.numpy(), three.groups
    gold = ids[groups == "label-map/gold"]
    assert (gold[:, 1:6:2] == w.label_token(c[gold[:, 0:6:2]])).all() and (gold[:, 6] != gold[:, 0:6:2].T).all()
    flipped = ids[groups == "label-map/flipped"]
    assert (flipped[:, 1:6:2] == w.label_token(1 - c[flipped[:, 0:6:2]])).all()
    assert (three.targets["context_accuracy"][groups == "label-map/flipped"] ==
            1 - c[flipped[:, 6]]).all()
    assert (ids[groups == "label-map/ood-inputs"][:, 0:6:2] >= w.n_inputs).all()
    assert (three.lengths[groups == "label-map/no-labels"] == 4).all()
    assert (three.candidates[groups == "label-map/unrelated"] == w.unrelated_token(np.arange(2))).all()


@pytest.fixture(scope="module")
def two_models(word_lm_dir, word_tokenizer, tmp_path_factory):
    """The tiny word-level GPT-2 and a wider one with the same tokenizer."""
    path = tmp_path_factory.mktemp("wider")
    build_model(ModelSpec(family="gpt2", n_layers=2, d_model=48, n_heads=4, max_len=512), len(word_tokenizer),
                seed=1).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return [str(word_lm_dir), str(path)]


def test_pretrained_models_end_to_end_with_the_scale_curve(two_models, tmp_path):
    run = iclab.run("label-semantics", "cpu", overrides={**FAST, "models": two_models}, out=tmp_path)
    rows = run.load_rows()
    acc = rows.where(metric="accuracy")
    conds = {"gold", "random", "flipped", "unrelated", "no-labels", "ood-inputs"}
    assert {r.label for r in acc.where(pos=2)} == {f"{t}/{c}" for t in ("sentiment", "topic") for c in conds}
    assert {r.label for r in acc.where(pos=0)} == {"sentiment/zero-shot", "topic/zero-shot"}
    assert set(acc.unique("model")) == set(two_models)
    assert {r.label for r in rows.where(metric="context_accuracy")} == {"sentiment/flipped", "topic/flipped"}
    assert rows.where(metric="n_prompts", label="topic/gold", model=two_models[0]).value() == 5
    assert {p.name for p in (run.path / "figures").iterdir()} == {"accuracy_by_condition.png", "accuracy_vs_k.png",
                                                                  "scale_curve.png"}
    text = (run.path / "report.html").read_text()
    assert "Random labels cost" in text and "Accuracy by condition against model size" not in text
    check_report_rebuilds(run.path)


def test_pretrained_models_of_three_families(word_lm_dirs, tmp_path):
    """GPT-2, Llama and Qwen2 (grouped-query attention) in one run: every family scores every condition."""
    models = [str(word_lm_dirs[f]) for f in ("gpt2", "llama", "qwen2")]
    overrides = {"data.tasks": ["sentiment"], "probe.shots": [2], "probe.n_queries": 3, "probe.n_draws": 1,
                 "probe.conditions": ["gold", "flipped", "unrelated"], "models": models}
    run = iclab.run("label-semantics", "cpu", overrides=overrides, out=tmp_path)
    acc = run.load_rows().where(metric="accuracy")
    assert set(acc.unique("model")) == set(models)
    for m in models:
        assert {r.label for r in acc.where(model=m, pos=2)} == {f"sentiment/{c}" for c in ("gold", "flipped",
                                                                                             "unrelated")}
        assert all(0 <= r.value <= 1 for r in acc.where(model=m))
    check_report_rebuilds(run.path)


def test_a_users_data_file(word_lm_dir, tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("review,verdict\n" + "".join(f"{t},{lab}\n" for t, lab in [
        ("The soup was warm", "positive"), ("The soup was cold", "negative"), ("The film was dull", "negative"),
        ("The film had a clever plot", "positive"), ("The bread was stale", "negative"),
        ("lovely weekend", "positive")]))
    overrides = {"data.path": str(data), "data.text_column": "review", "data.label_column": "verdict",
                 "data.input_prefix": "Review:", "data.label_prefix": "Sentiment:", "probe.shots": [1],
                 "probe.conditions": ["gold", "flipped"], "probe.n_draws": 1}
    run = iclab.run("label-semantics", "cpu", overrides=overrides, model=str(word_lm_dir), out=tmp_path / "runs")
    labels = {r.label for r in run.load_rows().where(metric="accuracy")}
    assert labels == {"mine/zero-shot", "mine/gold", "mine/flipped"}


def test_bad_data_is_refused_before_a_run_is_made(word_lm_dir, tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("sentence,label\na,x\nb,y\n")
    with pytest.raises(ConfigError, match="no column 'text' .*columns found: sentence, label"):
        iclab.run("label-semantics", "cpu", overrides={"data.path": str(data)}, model=str(word_lm_dir),
                  out=tmp_path / "runs")
    with pytest.raises(ConfigError, match="models: model path '/nope/model' does not exist"):
        iclab.run("label-semantics", "cpu", overrides={"models": ["/nope/model"]}, out=tmp_path / "runs")
    with pytest.raises(ConfigError, match="have too few examples for 50 demonstrations"):
        iclab.run("label-semantics", "cpu", overrides={"probe.shots": [50]}, model=str(word_lm_dir),
                  out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_a_label_that_is_not_one_token_is_refused_naming_it(char_lm_dir, tmp_path):
    with pytest.raises(InputError, match="label 'positive' is not one token"):
        iclab.run("label-semantics", "cpu", overrides={**FAST, "data.tasks": ["sentiment"]}, model=str(char_lm_dir),
                  out=tmp_path)


def test_trained_part_end_to_end(tmp_path):
    overrides = {"models": [], "probe.shots": [1, 3], "probe.n_queries": 8, "train.steps": 20, "train.eval_every": 10,
                 "train.ckpt_every": 10, "train.warmup": 2, "train.batch_size": 16, "model.d_model": 32}
    run = iclab.run("label-semantics", "cpu", overrides=overrides, out=tmp_path)
    rows = run.load_rows().where(probe="label_scoring", metric="accuracy")
    assert sorted(rows.unique("step")) == [0, 10, 20] and set(rows.unique("model")) == {"trained"}
    assert {r.label for r in rows.where(step=20, pos=3)} == {f"label-map/{c}" for c in (
        "gold", "random", "flipped", "unrelated", "no-labels", "ood-inputs")}
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"accuracy_by_condition.png", "accuracy_vs_k.png", "over_training.png", "training_curves.png"} <= figures
    assert "trained 20 steps on the label-map world" in (run.path / "report.html").read_text()
    check_report_rebuilds(run.path)


def _fake_run(tmp_path, acc: dict[str, float]) -> Run:
    """A finished run of one model on one set whose accuracies at k = 4 are ``acc`` (zero-shot at k = 0)."""
    cfg = iclab.studies.get_study("label-semantics").load_config("cpu", {"data.tasks": ["sentiment"]})
    from iclab.config import to_yaml

    run = Run.create(tmp_path, "label-semantics", to_yaml(cfg), {"preset": "cpu", "model": "m"})
    rows = [Row("label_scoring", "accuracy", v, pos=0 if c == "zero-shot" else 4, model="m", label=f"sentiment/{c}")
            for c, v in acc.items()]
    rows += [Row("label_scoring", "n_prompts", 100, pos=0 if c == "zero-shot" else 4, model="m",
                 label=f"sentiment/{c}") for c in acc]
    rows.append(Row("label_scoring", "context_accuracy", 1 - acc["flipped"], pos=4, model="m",
                    label="sentiment/flipped"))
    run.save_rows(rows)
    run.save_arrays("models", names=np.array(["m"]), n_params=np.array([135_000_000]))
    run.save_arrays("sets", names=np.array(["sentiment"]), n_classes=np.array([2]))
    return run


def test_findings_are_written_from_the_numbers(tmp_path):
    as_expected = {"zero-shot": 0.6, "gold": 0.9, "random": 0.85, "flipped": 0.3, "unrelated": 0.8,
                   "no-labels": 0.6, "ood-inputs": 0.7}
    run = _fake_run(tmp_path / "a", as_expected)
    text = report(run_config(run), run).summary
    assert "m (135M parameters), mean accuracy at k = 4: zero-shot 0.60, gold 0.90, random 0.85" in text
    assert "Random labels cost +0.05" in text and "overrides its semantic prior (below chance)" in text
    assert "Contradicts" not in text
    against = {**as_expected, "random": 0.6, "no-labels": 0.9}
    run = _fake_run(tmp_path / "b", against)
    text = report(run_config(run), run).summary
    assert "⚠ Contradicts the expected finding: on m random labels cost 0.30 against gold" in text
    assert "⚠ Contradicts the expected finding: on m no labels (0.90) are not below random labels (0.60)" in text


def run_config(run: Run):
    return iclab.studies.get_study("label-semantics").config_of(run)


def test_a_sweep_over_models_draws_the_scale_curve(two_models, tmp_path):
    from iclab.sweep import run_sweep

    overrides = {**FAST, "data.tasks": ["sentiment"], "probe.conditions": ["gold", "flipped"]}
    res = run_sweep("label-semantics", "cpu", overrides, {"models": [[m] for m in two_models]}, tmp_path)
    assert [t.status for t in res.trials] == ["done", "done"]
    (sweep_dir,) = (tmp_path / "label-semantics").iterdir()
    assert (sweep_dir / "figures" / "scale_curve.png").is_file()
    assert "Accuracy by model" in (sweep_dir / "report.html").read_text()


def test_every_label_is_checked_before_any_set_is_scored(word_lm_dir, tmp_path, monkeypatch):
    # an unrelated label of two words fails for the last set, before the first is scored
    from iclab.probes.label_scoring import LabelScoring

    def never(*args, **kwargs):
        raise AssertionError("a set was scored before every label was checked")

    monkeypatch.setattr(LabelScoring, "__call__", never)
    overrides = {**FAST, "probe.unrelated_labels": ["foo", "bar", "baz", "qux quux"]}
    with pytest.raises(InputError, match="label 'qux quux' is not one token"):
        iclab.run("label-semantics", "cpu", overrides=overrides, model=str(word_lm_dir), out=tmp_path)
