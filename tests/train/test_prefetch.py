"""Batches drawn ahead by worker processes (``train.data_workers``): the same numbers as one
thread, on a fresh run and a resumed one; a world that raises or a worker that dies stops the
run naming the step; no worker is left behind, whether the run ends, fails, is interrupted or
is killed. Each pool of 2 spawned workers costs about a second."""

import multiprocessing

import psutil
import pytest
from test_train import SPEC, WORLD, _cfg, _probe
from worker_worlds import FailingTokens

from iclab.config import TrainConfig
from iclab.errors import ConfigError
from iclab.models.build import ModelSpec, build_model
from iclab.models.vector import VectorModel
from iclab.studies import get_study
from iclab.train.checkpoint import latest_checkpoint
from iclab.train.loop import train
from iclab.train.prefetch import DataWorkerError, Prefetcher, data_workers
from iclab.worlds.regression import Curriculum, LinearRegression, Ramp


def _no_workers_left() -> None:
    assert multiprocessing.active_children() == []
    spawned = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert spawned == [], spawned


def _token_case():
    return lambda: build_model(SPEC, WORLD.vocab_size, seed=0), WORLD


def _vector_case():
    world = LinearRegression(dim=3, points=8, curriculum=Curriculum(points=Ramp(start=4, inc=2, every=5)))
    spec = ModelSpec(n_layers=1, d_model=16, n_heads=2, max_len=16)
    return lambda: VectorModel(spec, world.dim, seed=0), world


@pytest.mark.parametrize("case", [_token_case, _vector_case], ids=["tokens", "vectors-with-curriculum"])
def test_workers_give_the_numbers_of_one_thread(case):
    make, world = case()
    cfg = TrainConfig(steps=12, batch_size=4, lr=3e-3, warmup=2, eval_every=5, ckpt_every=100)  # the curriculum grows at 5, 10
    one = train(make(), world, cfg.model_copy(update={"data_workers": 0}), data_seed=1, probe=_probe)
    two = train(make(), world, cfg.model_copy(update={"data_workers": 2}), data_seed=1, probe=_probe)
    assert two.losses == one.losses
    assert two.rows.without_timing() == one.rows.without_timing()
    _no_workers_left()


def test_interrupted_with_workers_then_resumed_equals_uninterrupted(tmp_path):
    ref = train(build_model(SPEC, WORLD.vocab_size, seed=0), WORLD, _cfg(data_workers=0), data_seed=3,
                probe=_probe, ckpt_dir=tmp_path / "a")

    def interrupted_probe(model, step):
        if step == 20:  # Ctrl-C while the workers draw ahead; step 10 is the last checkpoint
            raise KeyboardInterrupt
        return _probe(model, step)

    with pytest.raises(KeyboardInterrupt):
        train(build_model(SPEC, WORLD.vocab_size, seed=0), WORLD, _cfg(data_workers=2), data_seed=3,
              probe=interrupted_probe, ckpt_dir=tmp_path / "b")
    _no_workers_left()
    assert latest_checkpoint(tmp_path / "b").name == "step-00000010"
    fresh = build_model(SPEC, WORLD.vocab_size, seed=99)  # everything must come from the checkpoint
    res = train(fresh, WORLD, _cfg(data_workers=2), data_seed=3, probe=_probe, ckpt_dir=tmp_path / "b")
    assert res.losses == ref.losses
    assert res.rows.without_timing() == ref.rows.without_timing()


def test_a_world_that_raises_in_a_worker_stops_the_run_naming_the_step():
    world = FailingTokens(**WORLD.model_dump(), fail_at=7)
    with pytest.raises(DataWorkerError, match=r"batch of step 7 failed in a data worker: ValueError: no batch at step 7"):
        train(build_model(SPEC, WORLD.vocab_size, seed=0), world, _cfg(data_workers=2), data_seed=0)
    _no_workers_left()


def test_a_worker_that_dies_stops_the_run_naming_a_step_and_not_hanging():
    world = FailingTokens(**WORLD.model_dump(), fail_at=4, die=True)
    with pytest.raises(DataWorkerError, match=r"data worker process died .* step [0-4] ") as e:  # the step waited for
        with Prefetcher(world, 0, 4, range(20), workers=2) as batches:
            for step in range(20):
                batches.get(step)
    assert "train.data_workers = 2" in str(e.value)
    _no_workers_left()


def test_batches_are_asked_for_in_order():
    with Prefetcher(WORLD, 0, 4, range(5, 10)) as batches:
        with pytest.raises(ValueError, match="the next is 5"):
            batches.get(6)


def test_auto_is_no_workers_on_the_cpu_and_half_the_cores_on_a_gpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert data_workers("auto", "cpu") == 0 and data_workers(3, "cpu") == 3
    assert data_workers("auto", "cuda") == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: 4 training processes share the cores
    assert data_workers("auto", "cuda") == 2
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert data_workers("auto", "cuda") == 1
    assert TrainConfig().data_workers == "auto"


@pytest.mark.parametrize("value", [-1, "many", 65, 2.5, True])
def test_a_bad_number_of_workers_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as e:
        get_study("induction-heads").load_config("cpu", {"train.data_workers": value})
    msg = str(e.value)
    assert f"train.data_workers = {value!r}" in msg and "'auto'" in msg and "\n" not in msg, msg


def test_torch_stays_out_of_the_workers():
    """The workers import this module and the worlds only: no torch to load in each."""
    import subprocess
    import sys

    code = "import sys, iclab.train.prefetch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "False"


def test_a_worker_that_died_between_two_steps_is_named_at_the_first_lost_batch():
    """The pool breaks while nothing waits on it: the next get names the first batch it lost,
    and hands out the ones drawn before."""
    import time

    world = FailingTokens(**WORLD.model_dump(), fail_at=2, die=True)
    with Prefetcher(world, 0, 4, range(20), workers=2) as batches:
        time.sleep(1.5)  # steps 0 to 3 were given at the start; the one drawing step 2 dies meanwhile
        got = []
        with pytest.raises(DataWorkerError, match=r"died .* before the batch of step (\d+) ") as e:
            for step in range(20):
                batches.get(step)
                got.append(step)
    assert f"step {len(got)} " in str(e.value) and len(got) <= 2
    _no_workers_left()


def test_workers_exit_when_the_training_process_is_killed_outright():
    """SIGKILL (or the OOM killer) gives the training process no chance to shut its pool down."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, sys, time, psutil\n"
            "from iclab.train.prefetch import Prefetcher\n"
            "from iclab.worlds import RepeatedTokens\n"
            "with Prefetcher(RepeatedTokens(vocab=16, seq_len=16, min_segment=3, max_segment=6), 0, 4, range(10**6), workers=2) as batches:\n"
            "    batches.get(0)\n"
            "    print(*[p.pid for p in psutil.Process().children() if 'spawn_main' in ' '.join(p.cmdline())], flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        workers = [psutil.Process(int(pid)) for pid in proc.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
