"""Write the table of science checks × seeds from the JUnit files of ``make seeds``.

Usage: ``python scripts/seeds_table.py seeds/`` (reads ``seeds/seed-<n>.xml`` and ``seeds/seed-<n>-long.xml``),
prints Markdown.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(folder: str) -> None:
    results: dict[str, dict[int, str]] = {}
    seeds = []
    for path in sorted(Path(folder).glob("seed-*.xml")):
        seed = int(path.stem.split("-")[1])
        if seed not in seeds:  # seed-<n>.xml and seed-<n>-long.xml fill one column
            seeds.append(seed)
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{Path(case.get('classname', '').replace('.', '/')).name}::{case.get('name')}"
            outcome = "fail" if case.find("failure") is not None or case.find("error") is not None else \
                "skipped" if case.find("skipped") is not None else "pass"
            results.setdefault(name, {})[seed] = f"{outcome} ({float(case.get('time', 0)):.0f} s)"
    seeds.sort()
    long_run = any(Path(folder).glob("seed-*-long.xml"))
    print("# Science checks at every seed\n")
    print(f"Written by `scripts/seeds_table.py` (`make seeds`) on {datetime.date.today().isoformat()} ({platform.machine()}, "
          f"{os.cpu_count()} CPUs; `make seeds` runs each check on one thread): each check's outcome and seconds (JUnit time) at "
          "each seed." + ("" if long_run else " The checks too long for CI (task-vectors' cpu-long preset) are not in it: "
                          "`make seeds-long` adds them.") + "\n")
    print("| science check | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|" + "---|" * len(seeds))
    for name, by_seed in sorted(results.items()):
        print(f"| {name} | " + " | ".join(by_seed.get(s, "–") for s in seeds) + " |")
    passed = {s: all(r.get(s, "").startswith("pass") for r in results.values()) for s in seeds}
    print("\nSeeds at which every check passes: " + ", ".join(str(s) for s, ok in passed.items() if ok))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "seeds")
