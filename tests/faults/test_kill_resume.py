"""SIGKILL at a random point of a run, then ``iclab resume``: the same rows as a run that never
stopped, for each study that trains (label-semantics on its label-map world).

A run is started in a forked child (the parent's imports are reused, so a run takes seconds),
which kills itself with SIGKILL at the k-th call of a function of the phase under test:

- training: the k-th optimizer step;
- checkpoint: the k-th tensor file written into a checkpoint (a checkpoint half written);
- probing: the k-th forward pass without gradients (a probe, during or after training);
- report: the k-th figure being saved (the report half written).

``k`` is drawn at random between 1 and the number of such calls an uninterrupted run makes
(counted on the reference run); the seed is in the test's output, and ``ICLAB_FAULT_SEED``
replays it. The child must die by SIGKILL (else the point was never reached); the parent then
resumes the run in process and compares every row with the reference run's. The fast suite
kills each study in one phase; ``-m slow`` runs every study in every phase.

Also here: three runs started at once into one ``--out`` get distinct ids and all their rows,
and a sweep killed in the middle of a trial and run again ends with every trial done once and
no row twice.
"""

from __future__ import annotations

import os
import random
import signal
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib.figure
import pytest
import torch

import iclab
import iclab.train.checkpoint
from iclab.runs.run import Run

TINY = {
    "induction-heads": {"layers": [1], "model.d_model": 32, "train.steps": 20, "train.eval_every": 10,
                        "train.ckpt_every": 5, "probe.n_prompts": 16, "train.warmup": 2},
    "icg-generalization": {"train.steps": 4, "train.eval_every": 2, "train.ckpt_every": 1, "train.warmup": 0,
                           "model.size": "tiny", "probe.shots": [1, 2], "probe.report_shot": 2,
                           "probe.n_prompts": 6},
    "graph-tracing": {"graph": {"walk_length": 32, "vocab": 24, "seed": 1},
                      "pretrain": {"vocab": 24, "seq_len": 32, "max_nodes": 16, "n_graphs": 16},
                      "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "max_len": 64},
                      "train": {"steps": 6, "batch_size": 4, "warmup": 1, "eval_every": 2, "ckpt_every": 2},
                      "probe": {"n_walks": 4, "n_contexts": 5, "window": 20, "min_present": 0.25, "train_walks": 2,
                                "batch_size": 4}},
    "task-vectors": {"world.bases": "orthogonal-4x16", "world.points": 20, "model.max_len": 40, "train.steps": 20, "train.eval_every": 10,
                     "train.ckpt_every": 5, "train.batch_size": 16, "train.warmup": 2, "model.n_layers": 2,
                     "model.d_model": 32, "model.n_heads": 2, "probe.n_per_basis": 12, "probe.eval_per_basis": 3,
                     "probe.umap": False},
    "regression-icl": {"world.dim": 3, "world.points": 7, "world.curriculum": {"points": {"start": 3, "every": 4}},
                       "model.family": "gpt2", "model.n_layers": 2, "model.d_model": 16, "model.n_heads": 2,
                       "model.max_len": 14, "train.steps": 12, "train.eval_every": 6, "train.ckpt_every": 4,
                       "train.warmup": 2, "train.batch_size": 8, "eval.n_prompts": 8, "eval.eval_every_prompts": 4,
                       "eval.bootstrap": 20, "shifts.kinds": ["scaled-x", "subspace"], "shifts.n_prompts": 4,
                       "probe.n_prompts": 8, "probe.min_examples": 5},
    "label-semantics": {"models": [], "probe.shots": [1, 3], "probe.n_queries": 8, "train.steps": 20,
                        "train.eval_every": 10, "train.ckpt_every": 5, "train.warmup": 2, "train.batch_size": 16,
                        "model.d_model": 32},
    "data-properties": {"train.steps": 6, "train.eval_every": 2, "train.ckpt_every": 2, "train.warmup": 0,
                        "train.batch_size": 8, "world.n_classes": 512, "world.n_features": 32, "model.d_model": 16,
                        "model.n_heads": 2, "probe.n_prompts": 8},
}


def _is_model(module) -> bool:
    from transformers import PreTrainedModel

    from iclab.models.vector import VectorModel

    return isinstance(module, (PreTrainedModel, VectorModel))


# phase: (owner, attribute, counts this call?)
PHASES: dict[str, tuple[object, str, Callable[..., bool]]] = {
    "training": (torch.optim.AdamW, "step", lambda *a, **k: True),
    "checkpoint": (iclab.train.checkpoint, "save_file", lambda *a, **k: True),
    "probing": (torch.nn.Module, "__call__", lambda self, *a, **k: not torch.is_grad_enabled() and _is_model(self)),
    "report": (matplotlib.figure.Figure, "savefig", lambda *a, **k: True),
}
FAST = {"induction-heads": "training", "icg-generalization": "probing", "graph-tracing": "report",
        "task-vectors": "checkpoint", "regression-icl": "probing", "data-properties": "probing"}


def _wrap(phase: str, on_call: Callable[[int], None]) -> None:
    """Replace the phase's function with one that calls ``on_call(n)`` on its n-th counted call."""
    owner, attr, counts = PHASES[phase]
    original = getattr(owner, attr)
    n = 0

    def wrapper(*args, **kwargs):
        nonlocal n
        if counts(*args, **kwargs):
            n += 1
            on_call(n)
        return original(*args, **kwargs)

    setattr(owner, attr, wrapper)


def _rows(run_dir: Path) -> list[tuple]:
    keys = ("probe", "metric", "layer", "head", "pos", "step", "model", "label", "value")
    rows = Run(run_dir).load_rows().without_timing()  # throughput measures the machine, not the model
    return sorted((tuple(getattr(r, k) for k in keys) for r in rows), key=repr)


_REFERENCE: dict[str, tuple[list[tuple], dict[str, int]]] = {}


def _reference(study: str, tmp_root: Path, monkeypatch) -> tuple[list[tuple], dict[str, int]]:
    """Rows of an uninterrupted run and how often it calls each phase's function (cached)."""
    if study not in _REFERENCE:
        counts = dict.fromkeys(PHASES, 0)
        with monkeypatch.context() as m:
            for phase, (owner, attr, _) in PHASES.items():
                m.setattr(owner, attr, getattr(owner, attr))  # restored when the context ends
                _wrap(phase, lambda n, phase=phase: counts.__setitem__(phase, n))
            run = iclab.run(study, "cpu", overrides=TINY[study], out=tmp_root / "reference")
        _REFERENCE[study] = (_rows(run.path), counts)
    return _REFERENCE[study]


def fork_and_kill(target: Callable[[], None], phase: str | None = None, k: int = 0) -> int:
    """Run ``target`` in a forked child that SIGKILLs itself at the k-th call of ``phase``;
    returns the child's wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            if phase is not None:
                _wrap(phase, lambda n: os.kill(os.getpid(), signal.SIGKILL) if n == k else None)
            target()
        except BaseException:  # noqa: BLE001 - reported through the exit status
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _seed() -> int:
    return int(os.environ.get("ICLAB_FAULT_SEED", random.randrange(10**6)))


@pytest.fixture(scope="module")
def ref_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reference")


def check_kill_and_resume(study: str, phase: str, tmp_path: Path, ref_root: Path, monkeypatch) -> None:
    ref_rows, counts = _reference(study, ref_root, monkeypatch)
    assert counts[phase] > 0, f"{study} never reaches {phase}"
    seed = _seed()
    k = random.Random(seed).randint(1, counts[phase])
    where = f"{study}: SIGKILL at call {k} of {counts[phase]} in {phase} (ICLAB_FAULT_SEED={seed})"
    out = tmp_path / "killed"
    status = fork_and_kill(lambda: iclab.run(study, "cpu", overrides=TINY[study], out=out), phase, k)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{where}: the child was not killed"
    (run_dir,) = (out / study).iterdir()
    assert Run(run_dir).meta["status"] == "running", where
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iclab.resume(run_dir)
    assert Run(run_dir).meta["status"] == "done", where
    assert _rows(run_dir) == ref_rows, f"{where}: the rows differ from an uninterrupted run's"
    assert (run_dir / "report.html").is_file(), where
    assert not list(run_dir.rglob("*.tmp")) and not list(run_dir.rglob(".tmp-*")), f"{where}: temporary files left"


@pytest.mark.parametrize("study", sorted(FAST))
def test_sigkill_then_resume_gives_the_same_rows(study, tmp_path, ref_root, monkeypatch, one_thread):
    check_kill_and_resume(study, FAST[study], tmp_path, ref_root, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("study", sorted(TINY))
def test_sigkill_in_every_phase_then_resume(study, phase, tmp_path, ref_root, monkeypatch, one_thread):
    check_kill_and_resume(study, phase, tmp_path, ref_root, monkeypatch)


def test_three_runs_at_once_get_distinct_ids_and_all_rows(tmp_path, ref_root, monkeypatch, one_thread):
    study = "induction-heads"
    ref_rows, _ = _reference(study, ref_root, monkeypatch)
    out = tmp_path / "runs"
    pids = []
    for _ in range(3):  # started together: the same second, so ids differ only by their random part
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                iclab.run(study, "cpu", overrides=TINY[study], out=out)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
    runs = sorted((out / study).iterdir())
    assert len(runs) == 3 and len({Run(r).meta["run"] for r in runs}) == 3
    for r in runs:
        assert Run(r).meta["status"] == "done" and _rows(r) == ref_rows


def test_run_ids_that_collide_are_drawn_again(tmp_path, monkeypatch):
    import secrets
    import time

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000" if "%H" in fmt else "2026-01-01")
    draws = iter(["beef", "beef", "beef", "cafe"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws))
    a = Run.create(tmp_path, "s", "seed: 0\n", {})
    b = Run.create(tmp_path, "s", "seed: 0\n", {})
    assert (a.id, b.id) == ("20260101-000000-beef", "20260101-000000-cafe")


def test_sweep_killed_mid_trial_and_run_again_does_every_trial_once(tmp_path, ref_root, monkeypatch, one_thread):
    from iclab.sweep import run_sweep

    study = "induction-heads"
    ref_rows, _ = _reference(study, ref_root, monkeypatch)
    grid = {"seed": [1, 2, 3]}
    out = tmp_path / "runs"
    # SIGKILL at the 27th optimizer step: trial 1 (20 steps) is done, trial 2 has its checkpoint of step 5
    status = fork_and_kill(lambda: run_sweep(study, "cpu", TINY[study], grid, out), "training", 27)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (sweep_dir,) = (out / study).iterdir()
    first = sweep_dir / "seed=1"
    assert Run(first).meta["status"] == "done"
    assert Run(sweep_dir / "seed=2").meta["status"] == "running"
    done_before = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}

    steps = []
    monkeypatch.setattr(torch.optim.AdamW, "step", torch.optim.AdamW.step)  # the original, restored afterwards
    _wrap("training", steps.append)
    res = run_sweep(study, "cpu", TINY[study], grid, out)
    assert [t.status for t in res.trials] == ["done", "done", "done"]
    assert len(steps) == 15 + 20  # trial 2 from its checkpoint at step 5, trial 3 whole; trial 1 not again
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == done_before
    per_trial = iclab.results("select run, count(*) as n from metrics where probe not in ('speed') group by run "
                              "order by run", out)  # the throughput rows are left out of ref_rows too
    assert list(per_trial["run"]) == [f"{sweep_dir.name}/seed={s}" for s in (1, 2, 3)]
    assert list(per_trial["n"]) == [len(ref_rows)] * 3, "a trial's rows are missing or stored twice"


def test_resume_past_a_damaged_newest_checkpoint_says_so_in_one_line(tmp_path, ref_root, monkeypatch, one_thread):
    from fault_helpers import cli

    study = "induction-heads"
    ref_rows, _ = _reference(study, ref_root, monkeypatch)
    out = tmp_path / "runs"
    status = fork_and_kill(lambda: iclab.run(study, "cpu", overrides=TINY[study], out=out), "training", 17)
    assert os.WIFSIGNALED(status)
    (run_dir,) = (out / study).iterdir()
    ckpts = run_dir / "checkpoints" / "L1"
    assert sorted(p.name for p in ckpts.glob("step-*")) == ["step-00000010", "step-00000015"]
    weights = ckpts / "step-00000015" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])  # truncated by a disk error after it was written
    res = cli("resume", str(run_dir))
    assert res.code == 0, res.stderr
    notices = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(notices) == 1 and "step-00000015 is damaged" in notices[0] and "resuming from step-00000010" in \
        notices[0], res.stderr
    assert _rows(run_dir) == ref_rows
