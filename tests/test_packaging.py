"""The presets ship inside the package: a wheel installed outside the repository runs a study.

The wheel is built with ``pip wheel --no-deps`` and installed with ``--no-deps`` into a fresh
virtual environment whose dependencies come from this interpreter's site-packages (a ``.pth``
file naming them; nothing is downloaded). ``iclab run`` is then started from another directory,
with no ``PYTHONPATH``, so only the installed copy of iclab can answer.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

from helpers import REPO
from iclab.config import configs_dir, preset_names
from iclab.studies import study_names


def test_every_study_has_presets_inside_the_package():
    assert configs_dir() == Path(__file__).resolve().parents[1] / "src" / "iclab" / "configs" \
        or "ICLAB_CONFIGS" in os.environ
    for study in study_names():
        assert {"cpu", "paper"} <= set(preset_names(study)), study


def test_pyproject_ships_the_presets_as_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"configs/*/*.yaml"' in text


def test_installed_wheel_runs_a_study_from_another_directory(tmp_path):
    source = tmp_path / "source"  # a copy: building in place would leave build/ in the repository
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, source / f)
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("iclab-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies, from this interpreter: plain paths, so its editable iclab (a .pth inside) is not seen
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ICLAB_CONFIGS")}
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(py), "-c", "import iclab, iclab.config as c; print(iclab.__file__); "
                            "print(c.configs_dir()); print(c.preset_names('induction-heads')); "
                            "from iclab.tasks.labelled import shipped_set, ood_sentences; "
                            "print('labelled', len(shipped_set('topic')), len(ood_sentences()))"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(env_dir)), where.stdout  # the installed copy, not the repository's
    assert "['cpu', 'paper']" in where.stdout
    assert "labelled 48 24" in where.stdout  # the labelled sets ship as package data

    env.update(ICLAB_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    run = subprocess.run([str(env_dir / "bin" / "iclab"), "run", "induction-heads", "--set", "layers=[1]",
                          "--set", "model.d_model=32", "--set", "train.steps=20", "--set", "train.eval_every=10",
                          "--set", "train.warmup=2", "--set", "probe.n_prompts=8", "--out", "runs"],
                         capture_output=True, text=True, cwd=elsewhere, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    (run_dir,) = (elsewhere / "runs" / "induction-heads").iterdir()
    assert (run_dir / "report.html").is_file() and (run_dir / "results.parquet").is_file()
