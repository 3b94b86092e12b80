"""Graph-tracing study: the built-in path (pretrain then trace) and the pretrained path (word
labels, semantic conflict) end to end on tiny models."""

from __future__ import annotations

import json

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
