"""Kill a run with SIGKILL during training, resume it, and get the same numbers."""

import os
import signal
import subprocess
import time

import pyarrow.parquet as pq

from helpers import ICLAB, iclab
from iclab.rows import TIMING_PROBES

SETTINGS = ["--set", "layers=[2]", "--set", "model.d_model=32", "--set", "train.steps=400",
            "--set", "train.eval_every=50", "--set", "train.ckpt_every=25", "--set", "probe.n_prompts=16",
            "--set", "train.warmup=10"]


def _rows(run_dir):
    rows = [r for r in pq.read_table(run_dir / "results.parquet").to_pylist() if r["probe"] not in TIMING_PROBES]
    keys = ("probe", "metric", "layer", "head", "pos", "step", "model", "label", "value")
    return sorted((tuple(r[k] for k in keys) for r in rows), key=repr)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref = iclab("run", "induction-heads", *SETTINGS, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    ref_dir = next((tmp_path / "ref" / "induction-heads").iterdir())

    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*ICLAB, "run", "induction-heads", *SETTINGS, "--out", str(tmp_path / "killed")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpt_root = None
    while time.time() < deadline:
        runs = list((tmp_path / "killed" / "induction-heads").glob("*/checkpoints/L2"))
        if runs and any(int(p.name.split("-")[1]) >= 100 for p in runs[0].glob("step-*")):
            ckpt_root = runs[0]
            break
        time.sleep(0.05)
    assert ckpt_root is not None, "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = ckpt_root.parents[1]
    assert not (run_dir / "results.parquet").exists()  # killed mid-training

    res = iclab("resume", str(run_dir))
    assert res.returncode == 0, res.stderr
    assert _rows(run_dir) == _rows(ref_dir)
