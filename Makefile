# Set-up and entry points. `make demo` and `make test` work on a fresh clone.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST  := $(VENV)/bin/pytest

.PHONY: venv demo test science science-long seeds seeds-long browser bench bench-capture clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# exact pin first: it takes the CPU build from this machine's disk (a looser one pulls CUDA)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,bench,tensorboard,wandb,ray,embeddings]"
	touch $(STAMP)

venv: $(STAMP)

# Debian's chromium renders report.html in the browser test.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: the browser test will be skipped"; fi; }

demo: venv
	$(VENV)/bin/iclab run induction-heads --preset cpu

test: venv browser
	$(PYTEST) -q --durations=15

# Science checks that train models for minutes (run by CI after `make test`).
science: venv
	$(PYTEST) -q -m "slow and not long" --durations=15

# Science checks too long for CI: today the task-vectors check that trains the whole
# 30K-step cpu-long preset (34-51 minutes on 2 cores).
science-long: venv
	$(PYTEST) -q -m long --durations=15

# The science checks of CI at seeds 0, 1 and 2 (not in CI: about three times `make science`,
# one thread each); writes docs/seeds.md, the table the README quotes. `make seeds-long` adds
# the checks too long for CI (task-vectors' cpu-long preset: 34-51 minutes a seed) to the same table.
seeds: venv
	mkdir -p seeds
	for s in 0 1 2; do ICLAB_SCIENCE_SEED=$$s OMP_NUM_THREADS=1 $(PYTEST) -q -m "slow and not long" tests/science --junitxml=seeds/seed-$$s.xml || true; done
	$(PY) scripts/seeds_table.py seeds > docs/seeds.md
	cat docs/seeds.md

seeds-long: venv
	mkdir -p seeds
	for s in 0 1 2; do ICLAB_SCIENCE_SEED=$$s OMP_NUM_THREADS=1 $(PYTEST) -q -m long tests/science --junitxml=seeds/seed-$$s-long.xml || true; done
	$(PY) scripts/seeds_table.py seeds > docs/seeds.md
	cat docs/seeds.md

# The trainer against the HF Trainer on every study's model, then every world's sampling rate
# against training (about 15 minutes on 2 quiet cores; benchmarks/README.md has the figures)
bench: venv
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_trainer.py --compile --steps 150 --warmup 20 --repeats 2
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_worlds.py

# Capture against TransformerLens and nnsight (installs the capture-bench extra first)
bench-capture: venv
	$(PY) -m pip install -q -e ".[capture-bench]"
	OMP_NUM_THREADS=1 $(PY) -W ignore::DeprecationWarning benchmarks/bench_capture.py

clean:
	rm -rf $(VENV) runs bench_out seeds
