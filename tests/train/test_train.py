import math

import numpy as np
import pytest
import torch

from iclab.config import TrainConfig
from iclab.errors import IclabWarning, ModelLoadError
from iclab.models.build import ModelSpec, build_model
from iclab.rows import Row
from iclab.train.checkpoint import latest_checkpoint, load_checkpoint
from iclab.train.loop import train
from iclab.train.schedule import get_lr
from iclab.worlds import RepeatedTokens

WORLD = RepeatedTokens(vocab=16, seq_len=16, min_segment=3, max_segment=6)
SPEC = ModelSpec(n_layers=1, d_model=16, n_heads=2, attn_only=True)


def test_schedule_warmup_then_cosine():
    lr, warm, steps = 1.0, 10, 110
    assert get_lr(0, lr, warm, steps, 0.1) == pytest.approx(0.1)
    assert get_lr(9, lr, warm, steps, 0.1) == pytest.approx(1.0)
    assert get_lr(10, lr, warm, steps, 0.1) == pytest.approx(1.0)
    assert get_lr(60, lr, warm, steps, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert get_lr(110, lr, warm, steps, 0.1) == pytest.approx(0.1)



def test_schedule_with_decay_steps_holds_the_peak_then_decays_over_the_last_steps():
    lr, warm, steps, decay = 1.0, 10, 110, 40  # stable from step 10 to 70, cosine from 70 to 110
    assert get_lr(5, lr, warm, steps, 0.1, decay) == pytest.approx(0.6)
    assert [get_lr(s, lr, warm, steps, 0.1, decay) for s in (10, 40, 70)] == pytest.approx([1.0, 1.0, 1.0])
    assert get_lr(90, lr, warm, steps, 0.1, decay) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert get_lr(110, lr, warm, steps, 0.1, decay) == pytest.approx(0.1)
    # a decay longer than the steps after the warm-up is the plain cosine
    assert get_lr(60, lr, warm, steps, 0.1, 1000) == get_lr(60, lr, warm, steps, 0.1)

def _probe(model, step):
    with torch.no_grad():
        w = next(model.parameters()).detach().double().sum().item()
    return [Row("test", "weight_sum", w, step=step)]


def _cfg(**kw):
    return TrainConfig(steps=30, batch_size=4, lr=3e-3, warmup=5, eval_every=10, ckpt_every=10, **kw)


def test_training_lowers_loss_and_probes_at_schedule(tmp_path):
    model = build_model(SPEC, WORLD.vocab_size, seed=0)
    res = train(model, WORLD, _cfg(), data_seed=0, probe=_probe)
    assert len(res.losses) == 30
    assert [r.step for r in res.rows if r.metric == "weight_sum"] == [0, 10, 20, 30]
    assert [r.step for r in res.rows if r.probe == "train" and r.metric == "loss"] == [10, 20, 30]


def test_probes_also_run_at_chosen_steps():
    model = build_model(SPEC, WORLD.vocab_size, seed=0)
    res = train(model, WORLD, _cfg(probe_at=[3, 7]), data_seed=0, probe=_probe)
    assert [r.step for r in res.rows if r.metric == "weight_sum"] == [0, 3, 7, 10, 20, 30]
    losses = {r.step: r.value for r in res.rows if r.probe == "train" and r.metric == "loss"}
    assert losses[3] == pytest.approx(np.mean(res.losses[:3]))
    assert losses[10] == pytest.approx(np.mean(res.losses[7:10]))


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    full = build_model(SPEC, WORLD.vocab_size, seed=0)
    ref = train(full, WORLD, _cfg(), data_seed=3, probe=_probe, ckpt_dir=tmp_path / "a")

    class Killed(Exception):
        pass

    def dying_probe(model, step):
        if step == 20:  # probes run before the checkpoint of the same step: step 10 is the last on disk
            raise Killed
        return _probe(model, step)

    part = build_model(SPEC, WORLD.vocab_size, seed=0)
    with pytest.raises(Killed):
        train(part, WORLD, _cfg(), data_seed=3, probe=dying_probe, ckpt_dir=tmp_path / "b")
    assert latest_checkpoint(tmp_path / "b").name == "step-00000010"
    fresh = build_model(SPEC, WORLD.vocab_size, seed=99)  # different init: everything must come from the checkpoint
    res = train(fresh, WORLD, _cfg(), data_seed=3, probe=_probe, ckpt_dir=tmp_path / "b")
    assert res.losses == ref.losses
    assert res.rows.without_timing() == ref.rows.without_timing()
    for (k, a), b in zip(full.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_finished_training_is_loaded_not_redone(tmp_path):
    model = build_model(SPEC, WORLD.vocab_size, seed=0)
    ref = train(model, WORLD, _cfg(), data_seed=0, ckpt_dir=tmp_path)
    again = build_model(SPEC, WORLD.vocab_size, seed=5)
    calls = []
    res = train(again, WORLD, _cfg(), data_seed=0, ckpt_dir=tmp_path, probe=lambda m, s: calls.append(s) or [])
    assert calls == [] and res.losses == ref.losses
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_corrupt_checkpoint_is_refused_by_name(tmp_path):
    model = build_model(SPEC, WORLD.vocab_size, seed=0)
    train(model, WORLD, _cfg(), data_seed=0, ckpt_dir=tmp_path)
    ckpt = latest_checkpoint(tmp_path)
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[-8:] = b"\x00" * 8
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_checkpoint(ckpt, build_model(SPEC, WORLD.vocab_size, seed=0))


def test_data_stream_is_a_function_of_seed_and_step():
    from iclab.train.prefetch import batch_at

    a = batch_at(WORLD, 1, 5, 4)
    b = batch_at(WORLD, 1, 5, 4)
    c = batch_at(WORLD, 1, 6, 4)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)


def test_cuda_refused_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from iclab.errors import ConfigError

    with pytest.raises(ConfigError, match="no GPU"):
        train(build_model(SPEC, 16, 0), WORLD, _cfg(device="cuda"), data_seed=0)


def test_the_previous_checkpoint_is_kept_and_a_damaged_newest_one_falls_back_to_it(tmp_path):
    ref = train(build_model(SPEC, WORLD.vocab_size, seed=0), WORLD, _cfg(), data_seed=3, probe=_probe,
                ckpt_dir=tmp_path)
    kept = sorted(p.name for p in tmp_path.glob("step-*"))
    assert kept == ["step-00000020", "step-00000030"]  # ckpt_every 10, steps 30: the newest two
    newest = tmp_path / "step-00000030" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated after it was written
    with pytest.warns(IclabWarning, match=r"step-00000030 is damaged .*resuming from step-00000020"):
        assert latest_checkpoint(tmp_path).name == "step-00000020"
    fresh = build_model(SPEC, WORLD.vocab_size, seed=99)
    with pytest.warns(IclabWarning, match="resuming from step-00000020"):
        res = train(fresh, WORLD, _cfg(), data_seed=3, probe=_probe, ckpt_dir=tmp_path)
    assert res.rows.without_timing() == ref.rows.without_timing() and res.losses == ref.losses  # trained 20 -> 30 again, same numbers
    assert latest_checkpoint(tmp_path).name == "step-00000030"  # rewritten whole


def test_no_whole_checkpoint_left_starts_over_with_a_notice(tmp_path):
    ref = train(build_model(SPEC, WORLD.vocab_size, seed=0), WORLD, _cfg(), data_seed=3, probe=_probe,
                ckpt_dir=tmp_path)
    for ckpt in tmp_path.glob("step-*"):
        (ckpt / "trainer.json").write_text("{garbled")
    with pytest.warns(IclabWarning, match="training starts over"):
        res = train(build_model(SPEC, WORLD.vocab_size, seed=0), WORLD, _cfg(), data_seed=3, probe=_probe,
                    ckpt_dir=tmp_path)
    assert res.rows.without_timing() == ref.rows.without_timing()


def test_a_checkpoint_that_does_not_verify_after_writing_keeps_the_previous(tmp_path, monkeypatch):
    import iclab.train.checkpoint as checkpoint

    model = build_model(SPEC, WORLD.vocab_size, seed=0)
    train(model, WORLD, _cfg(), data_seed=3, ckpt_dir=tmp_path)
    real, calls = checkpoint._sha256, []

    def sha_of_other_bytes_on_reading_back(path):  # the two digests recorded are right, the read-back differs
        calls.append(path)
        return real(path) if len(calls) <= 2 else "0" * 64

    monkeypatch.setattr(checkpoint, "_sha256", sha_of_other_bytes_on_reading_back)
    opt = torch.optim.AdamW(model.parameters())
    with pytest.raises(ModelLoadError, match="did not verify"):
        checkpoint.save_checkpoint(tmp_path, 40, model, opt, {"rows": [], "losses": []})
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000020", "step-00000030"]


def test_compile_trains_the_same_model_and_compiles_the_vector_models_loss_too():
    """``train.compile`` compiles the whole loss: for a vector model (whose loss is not its forward,
    so compiling the module alone left it eager) Dynamo must trace frames, and the losses must be
    an eager run's up to float rounding."""
    from torch._dynamo.utils import counters

    from iclab.models.vector import VectorModel
    from iclab.worlds.regression import SparseLinearMixture

    world = SparseLinearMixture(points=6)
    vspec = ModelSpec(n_layers=1, d_model=16, n_heads=2, max_len=12)
    cases = [(lambda: build_model(SPEC, WORLD.vocab_size, seed=0), WORLD),
             (lambda: VectorModel(vspec, world.dim, seed=0), world)]
    for make, w in cases:
        cfg = TrainConfig(steps=4, batch_size=4, lr=3e-3, warmup=1, eval_every=10, ckpt_every=10)
        eager = train(make(), w, cfg, data_seed=0).losses
        torch._dynamo.reset()
        counters.clear()
        compiled = train(make(), w, cfg.model_copy(update={"compile": True}), data_seed=0).losses
        assert counters["frames"]["ok"] > 0, f"nothing was compiled for {type(make()).__name__}"
        np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-5)


def test_compile_auto_compiles_on_a_gpu_only_and_falls_back_to_eager_when_compiling_fails(monkeypatch):
    from iclab.train import compiled as compiled_mod

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert [compiled_mod.wants_compile(s, d) for s, d in
            [("auto", cpu), ("auto", gpu), (True, cpu), (False, gpu)]] == [False, True, True, False]

    def broken_compile(fn, **kwargs):
        def run(batch):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")
        return run

    monkeypatch.setattr(compiled_mod.torch, "compile", broken_compile)
    said: list[str] = []
    calls = []

    def loss(batch):
        calls.append(batch)
        return torch.tensor(float(batch["x"]))

    fn = compiled_mod.compiled_loss(loss, "auto", gpu, said.append)
    assert [fn({"x": i}).item() for i in range(3)] == [0.0, 1.0, 2.0]  # eager from the first step on
    assert len(calls) == 3 and len(said) == 2 and "training eager" in said[1] and "InvalidCxxCompiler" in said[1]
    with pytest.raises(RuntimeError, match="InvalidCxxCompiler"):  # asked for by name: the failure is raised
        compiled_mod.compiled_loss(loss, True, cpu, said.append)({"x": 0})

    def faulty(batch):  # the model's own error is raised, not hidden behind a fallback
        raise ValueError("xs must have shape (batch, points, 8)")

    with pytest.raises(ValueError, match="xs must have shape"):
        compiled_mod.compiled_loss(faulty, "auto", gpu, said.append)({"x": 0})


def test_a_compiled_run_resumed_past_a_change_of_shape_gives_the_uninterrupted_runs_numbers(tmp_path):
    """A curriculum changes the batch shape at steps 5 and 10; the run resumed from its step-10
    checkpoint, in a fresh compiler, must give the numbers of the run that had compiled for
    three shapes by then."""
    import shutil

    from iclab.models.vector import VectorModel
    from iclab.worlds.regression import Curriculum, LinearRegression, Ramp

    world = LinearRegression(dim=3, points=8, curriculum=Curriculum(points=Ramp(start=4, inc=2, every=5)))
    spec = ModelSpec(n_layers=1, d_model=16, n_heads=2, max_len=16)
    cfg = _cfg(compile=True, keep_checkpoints={"last": 2, "every": 10})
    ref = train(VectorModel(spec, 3, seed=0), world, cfg, data_seed=3, probe=_probe, ckpt_dir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "step-00000010", tmp_path / "b" / "step-00000010")
    torch._dynamo.reset()  # as in a new process: nothing compiled
    res = train(VectorModel(spec, 3, seed=7), world, cfg, data_seed=3, probe=_probe, ckpt_dir=tmp_path / "b")
    assert res.losses == ref.losses
    assert res.rows.without_timing() == ref.rows.without_timing()
