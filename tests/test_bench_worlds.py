"""``benchmarks/bench_worlds.py``: one study at one preset, with tiny repeats, gives a table row
per measured step with positive rates and writes its JSON."""

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_worlds.py"


def load_script():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run: the script's folder holds study_models.py
    spec = importlib.util.spec_from_file_location("bench_worlds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_regression_icl_cpu_rows_have_positive_rates_and_the_table_its_columns(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "worlds.json"
    rows = bench.main(["--studies", "regression-icl", "--presets", "cpu", "--min-seconds", "0.01",
                       "--train-steps", "1", "--out", str(out)])
    assert [r.step for r in rows] == [0, 3999]  # a curriculum: the first and the last step
    for r in rows:
        assert r.units == r.batch * int(r.shape.split("x")[1])  # points of a vector batch
        assert r.model_seq == 2 * int(r.shape.split("x")[1])  # x and y interleaved
        assert min(r.sample_rate, r.train_rate, r.gpu_rate_estimate, r.ratio_cpu, r.ratio_gpu_estimate) > 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| study |"))
    assert [c.strip() for c in header.strip("|").split("|")] == bench.COLUMNS
    assert "ESTIMATE" in header
    saved = json.loads(out.read_text())
    assert len(saved["rows"]) == 2 and saved["rows"][1]["step"] == 3999
