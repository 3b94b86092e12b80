"""The memory estimate made from a config before anything is allocated."""

from __future__ import annotations

import sys

import pytest
import torch

from iclab.config import preset_names
from iclab.errors import ConfigError
from iclab.models.build import ModelSpec, build_model, n_params
from iclab.models.memory import (Footprint, check_fits, format_bytes, parse_bytes, training_footprint,
                                 transformer_params)
from iclab.studies import STUDIES, get_study

GiB = 2**30


@pytest.mark.parametrize("spec,vocab", [
    (ModelSpec(family="llama", n_layers=2, d_model=64, n_heads=4), 100),
    (ModelSpec(family="gpt2", n_layers=3, d_model=32, n_heads=4, max_len=128), 50),
    (ModelSpec(family="llama", n_layers=2, d_model=64, n_heads=4, attn_only=True), 64),
])
def test_parameter_count_matches_the_built_model(spec, vocab):
    est = transformer_params(spec.n_layers, spec.d_model, spec.mlp_width, vocab, spec.family, spec.max_len)
    assert est == pytest.approx(n_params(build_model(spec, vocab, seed=0)), rel=0.03)


def test_the_estimate_grows_with_every_size():
    spec = ModelSpec(n_layers=2, d_model=64, n_heads=4)
    base = training_footprint(spec, 100, 64, 8).total
    assert training_footprint(spec, 100, 64, 16).total > base
    assert training_footprint(spec, 100, 128, 8).total > base
    assert training_footprint(spec, 1000, 64, 8).total > base
    assert training_footprint(spec.model_copy(update={"d_model": 128}), 100, 64, 8).total > base
    assert training_footprint(spec, 100, 64, 8, probe_batch=64, probe_seq=64).total > base


def test_weight_and_optimizer_parts_match_the_model():
    spec = ModelSpec(family="llama", n_layers=2, d_model=64, n_heads=4)
    vocab, seq, batch = 128, 64, 16
    fp = training_footprint(spec, vocab, seq, batch)
    model = build_model(spec, vocab, seed=0)
    params = sum(p.numel() for p in model.parameters())
    assert fp.parts["weights"] == pytest.approx(4 * params, rel=0.03)
    assert fp.parts["optimizer"] == pytest.approx(8 * params, rel=0.03)


def test_presets_fit_where_they_are_meant_to_run(monkeypatch):
    """cpu presets on a laptop (under 2 GiB); paper presets on one 80 GB GPU (estimated as on CUDA,
    also on a machine without one)."""
    for name in STUDIES:
        study = get_study(name)
        for preset in preset_names(name):
            trains = "train" in study.config.model_fields  # demo-selection only scores pretrained models
            cfg = study.load_config(preset, {"train.device": "cpu"} if trains else {})
            if preset == "cpu":
                assert study.footprint(cfg, None).total < 2 * GiB, (name, study.footprint(cfg, None).describe())
            with monkeypatch.context() as m:
                m.setattr(sys.modules[study.footprint.__module__], "run_device", lambda device: "cuda")
                gpu = study.footprint(cfg, None)
            assert gpu.device == "cuda" and gpu.total < 80 * GiB, (name, preset, gpu.describe())


def test_check_fits_refuses_in_one_line_with_estimate_and_machine(monkeypatch):
    fp = Footprint({"weights": 3 * GiB, "activations": 20 * GiB}, "cpu", ("train.batch_size",))
    monkeypatch.setenv("ICLAB_MEMORY_LIMIT", "8GiB")
    with pytest.raises(ConfigError) as e:
        check_fits(fp, "this run")
    msg = str(e.value)
    assert "\n" not in msg
    for text in ("this run needs about 23.0 GiB", "weights 3.0 GiB", "activations 20.0 GiB", "8.0 GiB",
                 "ICLAB_MEMORY_LIMIT", "lower train.batch_size"):
        assert text in msg, (text, msg)
    monkeypatch.setenv("ICLAB_MEMORY_LIMIT", "64GiB")
    check_fits(fp, "this run")
    monkeypatch.setenv("ICLAB_MEMORY_LIMIT", "off")
    check_fits(Footprint({"activations": 10**18}), "this run")
    monkeypatch.setenv("ICLAB_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigError, match="ICLAB_MEMORY_LIMIT = 'lots'"):
        check_fits(fp, "this run")


def test_the_machine_memory_is_read_when_no_limit_is_set(monkeypatch):
    monkeypatch.delenv("ICLAB_MEMORY_LIMIT", raising=False)
    with pytest.raises(ConfigError, match="available on this machine"):
        check_fits(Footprint({"activations": 2**60}), "this run")


def test_units():
    assert parse_bytes("8GiB") == 8 * GiB and parse_bytes("500 MB") == 500 * 2**20 and parse_bytes("1e9") == 10**9
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(25.2 * GiB) == "25.2 GiB" and format_bytes(12) == "12 B"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_before_the_run(tmp_path):
    import iclab

    with pytest.raises(ConfigError, match="train.device = 'cuda'"):
        iclab.run("induction-heads", overrides={"train.device": "cuda"}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []
