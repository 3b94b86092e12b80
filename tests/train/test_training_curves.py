"""Training curves and progress: rows every log_every steps (loss, lr, gradient norm, throughput),
TensorBoard event files read back, and a progress display that moves before the first probe."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from rich.console import Console

from iclab.config import LogConfig, TrainConfig
from iclab.errors import ConfigError
from iclab.models.build import ModelSpec, build_model
from iclab.progress import TrainingProgress
from iclab.rows import Row, Rows
from iclab.train.loop import train
from iclab.train.schedule import get_lr
from iclab.worlds import RepeatedTokens

WORLD = RepeatedTokens(vocab=16, seq_len=16, min_segment=3, max_segment=6)
SPEC = ModelSpec(n_layers=1, d_model=16, n_heads=2, attn_only=True)


def _model():
    return build_model(SPEC, WORLD.vocab_size, seed=0)


@pytest.mark.parametrize("grad_clip", [1.0, 0.0])
def test_curves_are_rows_every_log_every_steps(grad_clip):
    cfg = TrainConfig(steps=200, batch_size=4, lr=3e-3, warmup=5, eval_every=100, grad_clip=grad_clip)
    res = train(_model(), WORLD, cfg, data_seed=0)
    log = res.rows.where(probe="log")
    steps, loss = log.where(metric="loss").series("step")
    assert steps.tolist() == list(range(2, 201, 2))  # default log_every = steps // 100: 100 points
    np.testing.assert_allclose(loss[:3], [np.mean(res.losses[0:2]), np.mean(res.losses[2:4]),
                                          np.mean(res.losses[4:6])], rtol=1e-6)
    _, lr = log.where(metric="lr").series("step")
    assert lr[9] == pytest.approx(get_lr(19, 3e-3, 5, 200, 0.1))  # the lr of the step just taken
    _, norms = log.where(metric="grad_norm").series("step")
    assert np.all(np.isfinite(norms)) and np.all(norms > 0)
    _, speed = res.rows.where(probe="speed", metric="tokens_per_s").series("step")
    assert len(speed) == 100 and np.all(speed > 0)


def test_gradient_norm_is_the_norm_before_clipping():
    cfg = TrainConfig(steps=1, batch_size=4, lr=3e-3, warmup=0, eval_every=1, grad_clip=1e-6, log_every=1)
    model = _model()
    reference = _model()
    from iclab.train.batches import loss_on_batch, to_device
    from iclab.train.prefetch import batch_at

    loss_on_batch(reference, to_device(batch_at(WORLD, 0, 0, 4), torch.device("cpu"))).backward()
    expected = torch.nn.utils.get_total_norm([p.grad for p in reference.parameters() if p.grad is not None])
    res = train(model, WORLD, cfg, data_seed=0)
    assert res.rows.where(probe="log").value("grad_norm") == pytest.approx(float(expected), rel=1e-5)


def test_tensorboard_event_file_holds_the_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(steps=20, batch_size=4, lr=3e-3, warmup=2, eval_every=10, log_every=5)
    res = train(_model(), WORLD, cfg, data_seed=0, log=LogConfig(tensorboard=True), run_dir=tmp_path, label="L1")
    events = EventAccumulator(str(tmp_path / "tensorboard" / "L1"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"} <= set(events.Tags()["scalars"])
    written = [(e.step, e.value) for e in events.Scalars("train/loss")]
    steps, loss = res.rows.where(probe="log", metric="loss").series("step")
    assert [s for s, _ in written] == steps.tolist() == [5, 10, 15, 20]
    np.testing.assert_allclose([v for _, v in written], loss, rtol=1e-6)


def test_a_sink_that_is_not_installed_is_a_config_error(monkeypatch):
    import importlib.util

    from iclab.config import validate

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install 'iclab\\[wandb\\]'"):
        validate(LogConfig, {"wandb": "my-project"}, "log")


def test_the_bar_moves_before_the_first_probe_and_says_what_the_probe_found(monkeypatch):
    monkeypatch.delenv("ICLAB_NO_PROGRESS", raising=False)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    cfg = TrainConfig(steps=30, batch_size=4, lr=3e-3, warmup=2, eval_every=30)

    def probe(model, step):
        return [Row("test", "weight", float(step))]

    import iclab.train.loop as loop

    monkeypatch.setattr(loop, "TrainingProgress", lambda label, total, start: TrainingProgress(
        label, total, start, out=console, min_interval=0.0))
    train(_model(), WORLD, cfg, data_seed=0, probe=probe, label="tiny",
          describe=lambda rows: f"weight {Rows(rows).value('weight'):.0f}")
    text = out.getvalue()
    assert "tiny step 0: weight 0" in text
    first_probe_after = text.index("tiny step 30: weight 30")
    moving = [f"{k}/30" for k in (1, 5, 10, 20)]
    assert all(0 <= text.find(m) < first_probe_after for m in moving), text[-500:]


def test_plain_lines_when_the_output_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv("ICLAB_NO_PROGRESS", raising=False)
    out = io.StringIO()
    shown = TrainingProgress("tiny", 100, out=Console(file=out, force_terminal=False, width=200), line_interval=0.0)
    with shown:
        for done in range(1, 101):
            shown.step(done)
            if done % 25 == 0:
                shown.logged(done, loss=2.0 - done / 100, tokens_per_s=1000.0)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"tiny: step {s}/100 ({s}%)" for s in (25, 50, 75, 100)]
    assert "loss 1.750" in lines[0] and "1,000 tok/s" in lines[0] and "remaining" in lines[0]


def test_quiet_prints_nothing(monkeypatch):
    monkeypatch.setenv("ICLAB_NO_PROGRESS", "1")
    out = io.StringIO()
    with TrainingProgress("tiny", 10, out=Console(file=out, force_terminal=True)) as shown:
        shown.step(5)
        shown.logged(10, 1.0, 1.0)
        shown.note("step 10: done")
    assert out.getvalue() == ""


def test_curves_after_a_resume_equal_an_uninterrupted_run(tmp_path):
    """A checkpoint in the middle of a logging interval: the log rows after the resume still
    average the whole interval (losses and gradient norms are kept in the checkpoint)."""
    cfg = TrainConfig(steps=24, batch_size=4, lr=3e-3, warmup=2, eval_every=24, ckpt_every=7, log_every=5)
    ref = train(_model(), WORLD, cfg, data_seed=0, ckpt_dir=tmp_path / "ref")

    class Killed(Exception):
        pass

    def die(model, step):
        if step == 24:
            raise Killed
        return []

    with pytest.raises(Killed):  # the last checkpoint on disk is step 21, in the middle of the interval 20-25
        train(_model(), WORLD, cfg, data_seed=0, probe=die, ckpt_dir=tmp_path / "b")
    res = train(_model(), WORLD, cfg, data_seed=0, ckpt_dir=tmp_path / "b")
    assert res.rows.without_timing() == ref.rows.without_timing()
    assert len(res.rows.where(probe="log", metric="grad_norm")) == 5  # steps 5, 10, 15, 20, 24


def _wandb_history(path) -> list[dict]:
    """The history records of an offline W&B run file, read without wandb's own reader (0.31 has no
    public one): a LevelDB-style log of 32 KiB blocks after a 7-byte header, each record a 7-byte
    header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) and a protobuf ``Record``."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, buf, history = 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # the rest of a block is padding
            pos += left
            continue
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            if rec.WhichOneof("record_type") == "history":
                history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
    return history


def test_wandb_offline_run_holds_the_curves(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # make test installs the extra; a plain install may not have it
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the sink's default: offline
    cfg = TrainConfig(steps=20, batch_size=4, lr=3e-3, warmup=2, eval_every=10, log_every=5)
    res = train(_model(), WORLD, cfg, data_seed=0, log=LogConfig(wandb="iclab-test"), run_dir=tmp_path, label="L1")
    # run.finish() returns before W&B's service process has closed the run's file, whose buffered
    # tail holds the history: CI read it once with no history at all. Process exit tears the
    # service down (atexit); a test that reads the file in the same process must do it itself.
    import wandb

    wandb.teardown()
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    history = _wandb_history(run_file)
    steps, loss = res.rows.where(probe="log", metric="loss").series("step")
    assert [h["_step"] for h in history] == steps.tolist() == [5, 10, 15, 20]
    np.testing.assert_allclose([h["train/loss"] for h in history], loss, rtol=1e-6)
    assert {"train/lr", "train/grad_norm", "train/tokens_per_s"} <= set(history[0])


def test_a_progress_bar_writing_to_a_file_prints_plain_lines_for_each_update_and_the_last(monkeypatch):
    """rich draws nothing to a file until the end; a log gets lines instead (every update here,
    line_interval 0), naming the task, n/total and the info field."""
    from iclab.progress import progress_bar

    monkeypatch.delenv("ICLAB_NO_PROGRESS", raising=False)
    out = io.StringIO()
    with progress_bar(out=Console(file=out, force_terminal=False, width=200), line_interval=0.0) as bar:
        task = bar.add_task("label semantics", total=3, info="")
        for i, name in enumerate(["sentiment", "topic", "entailment"]):
            bar.update(task, advance=1, info=f"gemma: {name}")
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"label semantics: {i}/3" for i in (1, 2, 3)]
    assert "gemma: entailment" in lines[-1] and "elapsed 0:00:0" in lines[-1]
