"""Shared helpers for tests that run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ICLAB = [sys.executable, "-m", "iclab.cli"]

# A few seconds of training: enough to exercise every step of the study.
TINY = ["--set", "layers=[2]", "--set", "model.d_model=32", "--set", "train.steps=60",
        "--set", "train.eval_every=20", "--set", "train.ckpt_every=20", "--set", "probe.n_prompts=16",
        "--set", "train.warmup=5"]


def iclab(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*ICLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
