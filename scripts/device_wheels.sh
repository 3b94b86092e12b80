#!/bin/bash
# Wheels of the dependencies the device machine's image lacks (its python3 is 3.12 with torch,
# transformers, accelerate, peft, pandas, pyarrow, matplotlib, typer, rich, scikit-learn... but no
# pydantic, duckdb or umap-learn), downloaded here into .whl/ for `scripts/device_check.sh`:
# carry .whl with the run (git ignores it through .git/info/exclude, so it travels only when carried).
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >> "$exclude"
mkdir -p .whl
platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms -d .whl \
  "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types==0.8.0" "typing-inspection==0.4.5" "duckdb==2.0.1" \
  "umap-learn==0.5.12" "pynndescent==0.7.0"
ls -la .whl
