"""``benchmarks/bench_gpu.py`` (the GPU check a lent device runs) on the CPU: a few steps of a cpu
model give one row with a positive rate and an MFU against the measured matmul, and its JSON."""

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def test_a_cpu_run_gives_a_row_per_model_and_compile_setting(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))  # as when run: the script's folder holds study_models.py
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "gpu.json"
    rows = bench.main(["--device", "cpu", "--preset", "cpu", "--studies", "induction-heads", "--steps", "6",
                       "--warmup", "2", "--compile", "false", "--out", str(out)])
    assert len(rows) == 1 and rows[0]["units_per_step"] == 64 * 32 and rows[0]["units_per_s"] > 0
    assert 0 < rows[0]["mfu_measured_peak"] < 1 and rows[0]["mfu_data_sheet"] is None  # no data sheet for a CPU
    assert json.loads(out.read_text())["rows"][0]["study"] == "induction-heads"
