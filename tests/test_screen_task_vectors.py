"""``scripts/screen_task_vectors.py``: a recipe screened in a few steps prints its curves and a verdict."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screen_task_vectors.py"


def test_a_short_screen_prints_td_per_eval_and_the_three_criteria():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--preset", "cpu", "train.steps=20", "train.eval_every=10",
         "probe.n_per_basis=12", "probe.k=3", "probe.eval_per_basis=4"],
        capture_output=True, text=True, check=True, timeout=300).stdout
    assert [line.split()[1] for line in out.splitlines() if line.startswith("step ")] == ["0", "10", "20"]
    assert sum(line.startswith("error/rank ") for line in out.splitlines()) == 4  # 2 predictors x 2 bases
    assert "RESULT TD " in out and "PASS=False" in out  # 20 steps learn nothing
