"""``scripts/seeds_table.py``: the table of ``make seeds`` from the JUnit files of its runs."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "seeds_table.py"


def junit(cases: str) -> str:
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'


def test_one_row_per_check_one_column_per_seed(tmp_path):
    ok = '<testcase classname="tests.science.test_science_a" name="test_x" time="12.4"/>'
    bad = ('<testcase classname="tests.science.test_science_a" name="test_x" time="3">'
           '<failure message="assert 0.7 >= 0.8"/></testcase>')
    long = '<testcase classname="tests.science.test_science_b" name="test_y" time="2000"/>'
    (tmp_path / "seed-0.xml").write_text(junit(ok))
    (tmp_path / "seed-1.xml").write_text(junit(bad))
    (tmp_path / "seed-0-long.xml").write_text(junit(long))  # `make seeds-long` adds to the same table
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "# Science checks at every seed" and "make seeds-long" not in out
    assert "| science check | seed 0 | seed 1 |" in lines
    assert "| test_science_a::test_x | pass (12 s) | fail (3 s) |" in lines
    assert "| test_science_b::test_y | pass (2000 s) | – |" in lines
    assert lines[-1] == "Seeds at which every check passes: 0"  # seed 1 fails test_x and never ran test_y
