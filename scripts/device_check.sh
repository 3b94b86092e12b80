#!/bin/bash
# The GPU checks, as one prepared command for a lent device machine (no network there):
#   here:  scripts/device_wheels.sh                      (once: .whl/ with what the image lacks)
#   there: run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=590)
# Writes its logs and JSON under $OUT (or bench_out/ without it). Stages, each timed out so the
# next still runs: the CUDA paths of the tests, then the paper presets' models trained eager and
# compiled (tokens/s, MFU against the data sheet and the measured matmul).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench_out}"; mkdir -p "$out"
export PYTHONUNBUFFERED=1 ICLAB_NO_PROGRESS=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "carry .whl (scripts/device_wheels.sh)"; exit 2; }
export PYTHONPATH=/tmp/site:src:benchmarks
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/device.txt"
# tests whose CUDA branches run only here (train on cuda, bf16, fused AdamW, memory checks, loading)
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/train tests/models/test_memory.py tests/models/test_load.py \
  2>&1 | tail -15 | tee "$out/tests.log"
timeout 400 python3 benchmarks/bench_gpu.py --studies induction-heads graph-tracing icg-generalization regression-icl task-vectors \
  --steps 40 --warmup 15 --compile false true --out "$out/gpu.json" 2>&1 | grep -v Warning | tee "$out/gpu.log"
