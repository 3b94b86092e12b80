"""Known answers of the linear probe (Akyürek et al. 2023; spec mechanisms.md, regression-icl).

A regression transformer whose blocks are switched off (every attention and MLP output
projection zeroed) has, at every layer, the residual stream ``read_in(z_t) + p_t``: the query
``x`` is then a linear function of the state at each x position, and the probe finds it
(R² ≈ 1), while a target drawn independently of the prompt gives R² ≈ 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iclab.errors import InputError
from iclab.models.build import ModelSpec
from iclab.models.vector import VectorModel, x_position
from iclab.probes import LinearProbe
from iclab.probes.linear_probe import ProbeTargets

DIM, POINTS, N = 3, 8, 120


def _passthrough_model() -> VectorModel:
    model = VectorModel(ModelSpec(family="gpt2", n_layers=2, d_model=32, n_heads=2, max_len=2 * POINTS), DIM, seed=0)
    with torch.no_grad():
        for block in model.backbone.transformer.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                proj.weight.zero_()
                proj.bias.zero_()
    return model.eval()


def _prompts(rng, targets_of):
    xs = rng.standard_normal((N, POINTS, DIM)).astype(np.float32)
    ys = rng.standard_normal((N, POINTS)).astype(np.float32)
    b, i = np.meshgrid(np.arange(N), np.arange(POINTS), indexing="ij")
    index = np.stack([b.ravel(), x_position(i.ravel())], axis=1)  # (N * POINTS, 2): every x position
    inputs = {"xs": torch.from_numpy(xs), "ys": torch.from_numpy(ys)}
    return ProbeTargets(inputs, index, targets_of(xs, b.ravel(), i.ravel()))


def test_a_target_the_states_contain_linearly_gives_r2_one_and_noise_gives_zero():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((N * POINTS, DIM))
    prompts = _prompts(rng, lambda xs, b, i: {"query": xs[b, i], "noise": noise})
    res = LinearProbe(alpha=1e-6)(_passthrough_model(), prompts)
    assert res.arrays["targets"].tolist() == ["query", "noise"] and res.arrays["layers"].tolist() == [0, 1]
    for layer in (0, 1):
        assert res.value("r2", layer=layer, label="query") > 0.999
        assert abs(res.value("r2", layer=layer, label="noise")) < 0.05
    assert {(r.layer, r.label) for r in res.rows} == {(l, t) for l in (0, 1) for t in ("query", "noise")}


def test_bad_inputs_raise():
    rng = np.random.default_rng(2)
    good = _prompts(rng, lambda xs, b, i: {"query": xs[b, i]})
    with pytest.raises(InputError, match="layers"):
        LinearProbe(layers=[5])(_passthrough_model(), good)
    with pytest.raises(InputError, match="index"):
        ProbeTargets(good.inputs, np.zeros((3, 3)), {"t": np.zeros(3)})
    with pytest.raises(InputError, match="prompts outside"):
        ProbeTargets(good.inputs, np.array([[N, 0]]), {"t": np.zeros(1)})
    with pytest.raises(InputError, match="empty"):
        ProbeTargets(good.inputs, good.index, {})
