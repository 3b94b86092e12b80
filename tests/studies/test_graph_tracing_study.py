"""Graph-tracing study: the built-in path (pretrain then trace) and the pretrained path (word
labels, semantic conflict) end to end on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from helpers import check_report_rebuilds
from iclab.config import to_yaml, validate
from iclab.errors import ConfigError
from iclab.models.build import ModelSpec, build_model
from iclab.runs.report import Report
from iclab.runs.run import Run
from iclab.studies.execute import execute
from iclab.studies.graph_tracing import GraphTracingConfig
from iclab.worlds.graph import DAYS, DEFAULT_WORDS


def _tiny_config(**changes) -> GraphTracingConfig:
    data = {"graph": {"walk_length": 32, "vocab": 24, "seed": 1},
            "pretrain": {"vocab": 24, "seq_len": 32, "max_nodes": 16, "n_graphs": 16},
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "max_len": 64},
            "train": {"steps": 4, "batch_size": 4, "warmup": 1, "eval_every": 2, "ckpt_every": 4},
            "probe": {"n_walks": 4, "n_contexts": 5, "window": 20, "min_present": 0.25, "train_walks": 2,
                      "batch_size": 4},
            "pretrained": {"walk_length": 40, "n_walks": 3, "batch_size": 2, "conflict": ["days"]}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    return validate(GraphTracingConfig, data)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="graph.vocab"):
        _tiny_config(graph={"vocab": 30})
    with pytest.raises(ConfigError, match="probe.colour"):
        _tiny_config(probe={"colour": 1})
    with pytest.raises(ConfigError, match="conflict"):
        _tiny_config(pretrained={"conflict": ["weekdays"]})


def test_built_in_path_end_to_end(tmp_path):
    cfg = _tiny_config()
    run = execute(Run.create(tmp_path, "graph-tracing", to_yaml(cfg), {"preset": "test"}), cfg)
    rows = run.load_rows()
    assert {r.step for r in rows if r.label == "training"} == {0, 2, 4}
    final = [r for r in rows if r.label == "grid"]
    assert {"accuracy", "accuracy_no_backtrack", "energy", "energy_pca", "procrustes_r2"} <= {r.metric for r in final}
    assert (run.path / "models" / "model" / "config.json").is_file()
    assert len(list((run.path / "figures").glob("*.png"))) == 5  # with the training curves
    assert "data:image/png;base64" in (run.path / "report.html").read_text()
    check_report_rebuilds(run.path)


def _save_tiny_word_model(path) -> None:
    words = ["<unk>", "<s>", *DEFAULT_WORDS, *DAYS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>")
    spec = ModelSpec(n_layers=2, d_model=16, n_heads=2, max_len=128)
    build_model(spec, len(words), seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)


def test_pretrained_path_end_to_end(tmp_path):
    path = tmp_path / "tiny-word-llama"
    _save_tiny_word_model(path)
    cfg = _tiny_config()
    run = execute(Run.create(tmp_path / "runs", "graph-tracing", to_yaml(cfg), {"preset": "test"}), cfg, str(path))
    rows = run.load_rows()
    grid = [r for r in rows if r.label == "grid"]
    days = [r for r in rows if r.label == "days"]
    assert max(r.pos for r in grid) == 40 and {r.layer for r in grid if r.metric == "energy"} == {0, 1}
    assert {"energy_pc12_context", "energy_pc34_context", "energy_pc12_pretrained",
            "energy_pc34_pretrained"} <= {r.metric for r in days}
    assert all(r.model == str(path) for r in rows)
    saved = Report.load(run.path)
    assert [s.heading for s in saved.sections][-2:] == ["Semantic conflict: days", "Semantic conflict: energies"]
    assert (run.path / "figures" / "conflict_days.png").is_file()
    assert json.loads((run.path / "report.json").read_text())["title"].endswith(str(path))
    check_report_rebuilds(run.path)


def _arrays(energy_pca: list[list[float]], contexts: list[int]) -> dict[str, np.ndarray]:
    return {"energy_pca": np.array(energy_pca, dtype=float), "context_lengths": np.array(contexts),
            "layers": np.arange(len(energy_pca[0]))}


def test_reorganisation_is_a_fall_of_the_stated_size_to_below_the_stated_level():
    from iclab.studies.graph_tracing.report import reorganisation, reorganisation_text

    nan = float("nan")
    a = _arrays([[nan, nan], [0.9, 0.62], [0.8, 0.45], [0.85, 0.48]], [4, 16, 64, 256])
    falls, stays = reorganisation(a, 1), reorganisation(a, 0)
    assert (falls["c0"], falls["e0"], falls["c_low"], falls["e_low"], falls["e_last"]) == (16, 0.62, 64, 0.45, 0.48)
    assert falls["reorganised"]  # 0.62 -> 0.45: a fall of 0.17 to below 0.5
    assert not stays["reorganised"]  # 0.9 -> 0.8: falls 0.1 but stays above 0.5
    assert "⚠" not in reorganisation_text(a, 1, 1) and "lowest 0.45 at context 64, 0.48 at the longest (256)" in \
        reorganisation_text(a, 1, 1)
    assert "⚠ Contradicts the expected finding" in reorganisation_text(a, 0, 0)
    low_from_the_start = _arrays([[0.3], [0.25]], [8, 64])  # already low: no fall of 0.1
    assert not reorganisation(low_from_the_start, 0)["reorganised"]
    assert reorganisation(_arrays([[nan], [nan]], [8, 64]), 0) is None


def test_sweep_text_counts_and_flags_trials():
    from iclab.studies.graph_tracing.sweep import sweep_text

    s = {"kind=grid": {"kind": "grid", "model": "m", "layer": 3, "e0": 0.67, "c0": 18, "e_low": 0.28, "c_low": 512,
                       "reorganised": True},
         "kind=ring": {"kind": "ring", "model": "m", "layer": 3, "e0": 0.27, "c0": 18, "e_low": 0.19, "c_low": 512,
                       "reorganised": False}}
    text = sweep_text(s)
    assert text.startswith("1 of 2 trials reorganise") and text.count("⚠") == 2
    assert "0.67 at context 18 → 0.28 at 512" in text
    assert "⚠" not in sweep_text({"kind=grid": s["kind=grid"]})


def test_finding1_preset_sweeps_a_pretrained_model_over_two_graphs(tmp_path):
    from iclab.config import load_config
    from iclab.sweep.runner import run_sweep

    cfg = load_config(GraphTracingConfig, "graph-tracing", "finding1")
    assert cfg.sweep == {"graph.kind": ["grid", "ring"]} and cfg.pretrained.figure_layer is None
    path = tmp_path / "tiny-word-llama"
    _save_tiny_word_model(path)
    small = {"pretrained.walk_length": 40, "pretrained.n_walks": 2, "pretrained.batch_size": 2,
             "probe.n_contexts": 5, "probe.window": 20, "probe.min_present": 0.25}
    res = run_sweep("graph-tracing", "finding1", small, cfg.sweep, tmp_path / "runs", model=str(path))
    report = json.loads((res.path / "report.json").read_text())
    text = " ".join(s.get("text") or "" for s in report["sections"])
    assert "of 2 trials reorganise" in text
    assert (res.path / "figures" / "sweep_energy.png").is_file()
