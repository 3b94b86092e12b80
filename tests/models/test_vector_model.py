"""Tests of the regression transformer (read-in, HF backbone, read-out; spec task_vectors.md,
synthetic part, and DESIGN.md, Model).

Known answers: the interleaved layout is checked entry by entry; causality by changing
later points and seeing earlier predictions stay bit-identical; captured residual streams
against HF's own ``hidden_states``; a patch at the last layer changes exactly one
prediction; save/load reproduces predictions exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iclab.baselines import InContextPredictor, error_curve
from iclab.config import TrainConfig
from iclab.errors import ConfigError, ModelLoadError
from iclab.models.build import ModelSpec
from iclab.models.capture import capture
from iclab.models.hooks import anatomy, hook_count
from iclab.models.names import act_name
from iclab.models.patch import Replace, patch
from iclab.models.vector import VectorModel, interleave, x_position, y_position
from iclab.train.loop import train
from iclab.worlds.regression import SparseLinearMixture

WORLD = SparseLinearMixture(points=8)
N_LAYERS, D_MODEL = 2, 32


@pytest.fixture(params=["gpt2", "llama"])
def model(request) -> VectorModel:
    spec = ModelSpec(family=request.param, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=4, max_len=32)
    return VectorModel(spec, WORLD.dim, seed=3).eval()


@pytest.fixture
def batch():
    return WORLD.sample(np.random.default_rng(0), 5)


def tensors(b):
    return torch.from_numpy(b.xs.copy()), torch.from_numpy(b.ys.copy())


def test_interleave_layout():
    xs = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    ys = -torch.arange(1, 7, dtype=torch.float32).view(2, 3)
    z = interleave(xs, ys)
    assert z.shape == (2, 6, 4)
    for i in range(3):
        assert torch.equal(z[:, x_position(i)], xs[:, i])
        assert torch.equal(z[:, y_position(i), 0], ys[:, i])
        assert (z[:, y_position(i), 1:] == 0).all()


def test_shapes_and_protocol(model, batch):
    xs, ys = tensors(batch)
    preds = model(xs, ys)
    assert preds.shape == (5, WORLD.points)
    assert model.loss(xs, ys).shape == ()
    out = model.predict(batch.xs, batch.ys, batch.info)
    assert out.shape == (5, WORLD.points) and out.dtype == np.float64
    np.testing.assert_allclose(out, preds.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert isinstance(model, InContextPredictor) and model.name == "transformer"
    assert error_curve(model, batch).shape == (WORLD.points,)


def test_predict_in_chunks_matches_one_pass(model, batch):
    np.testing.assert_allclose(model.predict(batch.xs, batch.ys, batch_size=2), model.predict(batch.xs, batch.ys),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("i", [0, 3, 6])
def test_prediction_i_ignores_later_points(model, batch, i):
    xs, ys = tensors(batch)
    base = model(xs, ys).detach()
    xs2, ys2 = xs.clone(), ys.clone()
    xs2[:, i + 1:] += torch.randn_like(xs2[:, i + 1:])  # later inputs
    ys2[:, i:] += 5.0  # y_i and later targets
    changed = model(xs2, ys2).detach()
    assert torch.equal(changed[:, : i + 1], base[:, : i + 1])
    assert not torch.allclose(changed[:, i + 1:], base[:, i + 1:])


def test_prediction_depends_on_earlier_points(model, batch):
    xs, ys = tensors(batch)
    ys2 = ys.clone()
    ys2[:, 0] += 3.0
    assert not torch.allclose(model(xs, ys2)[:, 1:], model(xs, ys)[:, 1:])


def test_bad_shapes_and_too_long_prompts(model):
    with pytest.raises(ValueError, match="xs must have shape"):
        model(torch.zeros(2, 3, WORLD.dim + 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="ys must have shape"):
        model(torch.zeros(2, 3, WORLD.dim), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 17, WORLD.dim), torch.zeros(1, 17))
    with pytest.raises(ConfigError, match="dim"):
        VectorModel(ModelSpec(family="gpt2", n_layers=1, d_model=16, n_heads=2), 0)


def test_capture_resid_post_through_the_wrapper(model, batch, hooks_on):
    xs, ys = tensors(batch)
    assert anatomy(model).n_layers == N_LAYERS
    names = [act_name("resid_post", layer) for layer in range(N_LAYERS)]
    before = hooks_on(model)
    cache = capture(model, {"xs": xs, "ys": ys}, names)
    assert hooks_on(model) == before and hook_count(model) == 0
    torch.testing.assert_close(cache.logits, model(xs, ys).detach())
    with torch.no_grad():  # HF's own reading of the same pass
        out = model.backbone.base_model(inputs_embeds=model.read_in(interleave(xs, ys)), output_hidden_states=True)
    for layer in range(N_LAYERS - 1):  # hidden_states[l + 1] is resid_post of layer l, except the last
        assert cache[names[layer]].shape == (5, 2 * WORLD.points, D_MODEL)
        torch.testing.assert_close(cache[names[layer]], out.hidden_states[layer + 1])
    final_norm = anatomy(model).final_norm  # the last one is taken before the final norm
    torch.testing.assert_close(final_norm(cache[names[-1]]), out.last_hidden_state)


def test_patch_at_the_last_layer_changes_one_prediction(model, batch):
    xs, ys = tensors(batch)
    name = act_name("resid_post", N_LAYERS - 1)
    clean = capture(model, {"xs": xs, "ys": ys}, [name])
    same = patch(model, {"xs": xs, "ys": ys}, {name: Replace(clean[name][:, x_position(2)], pos=x_position(2))})
    torch.testing.assert_close(same, clean.logits)
    moved = patch(model, {"xs": xs, "ys": ys}, {name: Replace(torch.ones(D_MODEL), pos=x_position(2))})
    changed = ~torch.isclose(moved, clean.logits).all(dim=0)  # (points,)
    assert changed.tolist() == [i == 2 for i in range(WORLD.points)]
    # the read-out of a replaced state is computable by hand
    expect = model.read_out(anatomy(model).final_norm(torch.ones(D_MODEL))).squeeze(-1)
    torch.testing.assert_close(moved[:, 2], expect.expand(5).detach())


def test_save_load_round_trip(model, batch, tmp_path):
    model.save(tmp_path / "m")
    loaded = VectorModel.load(tmp_path / "m")
    assert loaded.spec == model.spec and loaded.dim == model.dim and not loaded.training
    np.testing.assert_array_equal(loaded.predict(batch.xs, batch.ys), model.predict(batch.xs, batch.ys))
    assert anatomy(loaded).n_layers == N_LAYERS
    with pytest.raises(ModelLoadError, match="not a saved VectorModel"):
        VectorModel.load(tmp_path / "nothing")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not be read"):
        VectorModel.load(tmp_path / "m")


def test_seed_fixes_the_weights_and_leaves_the_global_rng_alone():
    spec = ModelSpec(family="gpt2", n_layers=1, d_model=16, n_heads=2, max_len=16)
    torch.manual_seed(0)
    a = VectorModel(spec, 4, seed=5)
    after = torch.rand(1)
    torch.manual_seed(0)
    b = VectorModel(spec, 4, seed=5)
    assert torch.equal(torch.rand(1), after)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_a_few_training_steps_lower_the_loss():
    spec = ModelSpec(family="gpt2", n_layers=2, d_model=32, n_heads=4, max_len=32)
    model = VectorModel(spec, WORLD.dim, seed=0)
    held_out = WORLD.sample(np.random.default_rng(99), 256)
    start = float(((model.predict(held_out.xs, held_out.ys) - held_out.ys) ** 2).mean())
    cfg = TrainConfig(steps=40, batch_size=32, lr=3e-3, warmup=5, eval_every=20, ckpt_every=1000, device="cpu")
    result = train(model, WORLD, cfg, data_seed=0)
    end = float(((model.predict(held_out.xs, held_out.ys) - held_out.ys) ** 2).mean())
    assert len(result.losses) == 40 and end < start
