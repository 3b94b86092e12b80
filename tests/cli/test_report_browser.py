"""The report renders in a real headless browser and every figure loads."""

import os
import re
import shutil
import subprocess

import pytest

from helpers import TINY, iclab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.browser
def test_report_figures_load_in_chromium(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make test installs Debian's chromium)")
        pytest.skip("chromium not installed")
    p = iclab("run", "induction-heads", *TINY, "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    report = next((tmp_path / "induction-heads").iterdir()) / "report.html"
    n_figures = report.read_text().count("<img ")
    assert n_figures >= 5

    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, "the report's load script did not run"
    assert int(total.group(1)) == n_figures
    assert int(loaded.group(1)) == n_figures

    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1200, 2400)
    import numpy as np

    assert len(np.unique(np.asarray(img))) > 20  # not a blank page
