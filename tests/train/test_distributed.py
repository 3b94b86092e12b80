"""Data-parallel training (``iclab.train.distributed``).

Fast, in this process: a global batch split over N ranks gives the global batch's loss and
gradient (the masked loss included), and the DistributedDataParallel wrapper trains both kinds
of model (HF causal LM, vector-world wrapper) in a one-process gloo group.

Slow (``-m slow``), real jobs of 2 processes over gloo on the CPU, through the command line
(``iclab run --nproc 2``, which launches torchrun): the same global batch gives the same rows
as one process, within float tolerance; and a job SIGKILLed mid-training then resumed with
``iclab resume --nproc 2`` ends with exactly the rows of a job that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

import iclab
from iclab.models.build import ModelSpec, build_model
from iclab.models.vector import VectorModel
from iclab.runs.run import Run
from iclab.train.batches import host_tensors, loss_on_batch
from iclab.train.distributed import Ranks, loss_function
from iclab.worlds.base import TokenBatch

SRC = Path(__file__).resolve().parents[2] / "src"


def _grads(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("masked", [False, True])
def test_slices_of_a_global_batch_give_its_loss_and_gradient(masked):
    model = build_model(ModelSpec(family="llama", n_layers=1, d_model=16, n_heads=2, max_len=16), 11, seed=0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 11, size=(6, 9))
    mask = rng.random((6, 9)) < 0.4 if masked else None  # uneven counts per row: per-slice means would differ
    batch = host_tensors(TokenBatch(tokens, loss_mask=mask))
    whole = loss_on_batch(model, batch)
    whole.backward()
    want = _grads(model)
    model.zero_grad()
    losses, grads = [], []
    for r in range(3):
        loss = loss_on_batch(model, Ranks(r, 3).shard(batch))
        loss.backward()
        losses.append(loss.item())
        grads.append(_grads(model))
        model.zero_grad()
    assert all(Ranks(r, 3).shard(batch)["tokens"].shape == (2, 9) for r in range(3))
    assert np.mean(losses) == pytest.approx(whole.item(), rel=1e-6)  # what Ranks.mean logs
    torch.testing.assert_close(torch.stack(grads).mean(0), want, rtol=1e-5, atol=1e-7)  # what DDP averages


def test_a_batch_that_does_not_split_is_a_config_error():
    from iclab.errors import ConfigError

    with pytest.raises(ConfigError, match="train.batch_size = 5 does not split over 2 processes"):
        Ranks(0, 2).shard({"tokens": torch.zeros(5, 3)})


@pytest.fixture
def one_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("kind", ["causal-lm", "vector"])
def test_the_data_parallel_loss_trains_both_kinds_of_model(kind, one_process_group):
    spec = ModelSpec(family="gpt2", n_layers=2, d_model=16, n_heads=2, max_len=32)
    if kind == "vector":
        make = lambda: VectorModel(spec, 3, seed=0)  # noqa: E731
        g = torch.Generator().manual_seed(0)
        batch = {"xs": torch.randn(4, 5, 3, generator=g), "ys": torch.randn(4, 5, generator=g)}
    else:
        make = lambda: build_model(spec, 13, seed=0)  # noqa: E731
        batch = {"tokens": torch.randint(0, 13, (4, 8), generator=torch.Generator().manual_seed(0))}
    plain, wrapped = make(), make()
    ddp = loss_function(wrapped, Ranks(0, 2), torch.device("cpu"))
    assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
    for _ in range(2):  # a second step fails if DDP found parameters without gradients
        for model, fn in ((plain, lambda b: loss_on_batch(plain, b)), (wrapped, ddp)):
            model.zero_grad()
            fn(batch).backward()
        torch.testing.assert_close(_grads(wrapped), _grads(plain))


# ---------------------------------------------------------------- real 2-process jobs (slow)

TINY = {"layers": [1], "model.d_model": 32, "train.steps": 200, "train.eval_every": 100, "train.ckpt_every": 20,
        "train.log_every": 10, "probe.n_prompts": 16, "train.warmup": 10}


def _cli(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "ICLAB_NO_PROGRESS": "1"}
    return subprocess.Popen([sys.executable, "-m", "iclab.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _sets() -> list[str]:
    return [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def _rows(run_dir: Path) -> dict[tuple, float]:
    keys = ("probe", "metric", "layer", "head", "pos", "step", "model", "label")
    return {tuple(getattr(r, k) for k in keys): r.value for r in Run(run_dir).load_rows().without_timing()}


def _close(a: dict, b: dict, tol: float) -> list:
    """Keys whose values differ by more than ``tol`` (relative and absolute), or are only in one."""
    bad = sorted(set(a) ^ set(b), key=repr)
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if not (math.isnan(x) and math.isnan(y)) and not abs(x - y) <= tol * (1 + abs(x)):
            bad.append((k, x, y))
    return bad


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    job = _cli("run", "induction-heads", "--nproc", "2", "--out", str(out), *_sets())
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log
    assert log.count("run finished") == 1, log  # rank 0 alone reports
    (run_dir,) = (out / "induction-heads").iterdir()
    assert Run(run_dir).meta["processes"] == 2
    return run_dir


@pytest.mark.slow
def test_two_processes_give_the_rows_of_one_process(two_process_run, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank
    try:
        one = iclab.run("induction-heads", "cpu", overrides=TINY, out=tmp_path)
    finally:
        torch.set_num_threads(threads)
    a, b = _rows(one.path), _rows(two_process_run)
    assert len(a) > 100 and len([k for k in a if k[:2] == ("log", "loss")]) == 20
    assert _close(a, b, 1e-4) == []  # loss curve, head scores, ICL scores, ablation
    assert sorted(p.name for p in (two_process_run / "checkpoints" / "L1").iterdir()) == [
        "step-00000180", "step-00000200"]  # written once, by rank 0
    assert (two_process_run / "report.html").is_file()


@pytest.mark.slow
def test_sigkill_of_a_two_process_job_then_resume_gives_the_same_rows(two_process_run, tmp_path):
    out = tmp_path / "runs"
    job = _cli("run", "induction-heads", "--nproc", "2", "--out", str(out), *_sets(), start_new_session=True)
    ckpts = out / "induction-heads"
    deadline = time.monotonic() + 240
    while not list(ckpts.glob("*/checkpoints/L1/step-0000004[0-9]")) and job.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint of step 40 after 4 minutes"
        time.sleep(0.02)
    job_pids = _tree(job.pid)  # the iclab launcher, torchrun and both ranks (torchrun gives each its own session)
    for pid in job_pids:
        os.kill(pid, signal.SIGKILL)
    job.communicate(timeout=30)
    assert len(job_pids) >= 4, job_pids
    (run_dir,) = ckpts.iterdir()
    assert Run(run_dir).meta["status"] == "running", "the job ended before it was killed"
    assert not (run_dir / "checkpoints" / "L1" / "step-00000200").exists()
    resumed = _cli("resume", str(run_dir), "--nproc", "2")
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert Run(run_dir).meta["status"] == "done"
    assert _close(_rows(run_dir), _rows(two_process_run), 0.0) == []  # exactly the rows of an unbroken job
