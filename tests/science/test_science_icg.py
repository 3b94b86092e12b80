"""Science check of the icg-generalization study (spec icg.md, finding 1), on the cpu preset.

Two models are trained through the sweep machinery (about 3 minutes each on one CPU
thread, 5.5 minutes in all): composition arity M = 2 (K = 9) and M = 4 (K = 3), 81
topics each, r_R = 0.5.
What the spec's finding 1 needs, as measured here (seed 0, n = 128 prompts per set,
k = 5; numbers of the run that fixed these thresholds)::

    M = 2: ICTR_R 0.96  ICTR_C 0.12  ICTR_U 0.14   (untrained ≤ 0.02, Bayes-optimal R 1, C/U 0)
    M = 4: ICTR_R 0.95  ICTR_C 0.68  ICTR_U 0.63

Asserted: both models repeat R topics (ICTR_R ≥ 0.8) far above the untrained model
(≥ 0.5 higher); at M = 2 U topics are not repeated (ICTR_U ≤ 0.3, R − U ≥ 0.5); at
M = 4 they are (ICTR_U ≥ 0.5, and ≥ 0.3 above M = 2). The margins leave room for
run-to-run noise (the 95% interval on one rate is about ±0.08 at n = 128).
"""

from __future__ import annotations

import pytest

from iclab.runs.run import Run
from iclab.sweep import run_sweep

pytestmark = pytest.mark.slow


def _ictr(path: str, topic_set: str, k: int = 5) -> dict[str, float]:
    rows = [r for r in Run(path).load_rows() if r.probe == "ictr" and r.metric == "ictr" and r.label == topic_set
            and r.pos == k]
    last = max(r.step for r in rows)
    return {"trained": next(r.value for r in rows if r.step == last),
            "untrained": next(r.value for r in rows if r.step == 0)}


def test_cpu_preset_repeats_R_topics_and_generalizes_to_U_only_at_M4(tmp_path, science_seed):
    res = run_sweep("icg-generalization", "cpu", overrides={"seed": science_seed}, grid={"world.r_repeat": [0.5]},
                    out=tmp_path)
    assert not res.failed, [(t.name, t.error) for t in res.failed]
    by_m = {t.values["world.arity"]: t.path for t in res.trials}
    assert sorted(by_m) == [2, 4]
    got = {(M, s): _ictr(by_m[M], s) for M in (2, 4) for s in "RCU"}
    print("\nICTR at k = 5 (trained / untrained):")
    for M in (2, 4):
        print(f"  M = {M}: " + "  ".join(f"{s} {got[M, s]['trained']:.2f} / {got[M, s]['untrained']:.2f}"
                                         for s in "RCU"))
    print(f"sweep report: {res.report}")
    for M in (2, 4):
        r = got[M, "R"]
        assert r["trained"] >= 0.8, (M, r)
        assert r["trained"] - r["untrained"] >= 0.5, (M, r)
    u2, u4 = got[2, "U"]["trained"], got[4, "U"]["trained"]
    assert u2 <= 0.3 and got[2, "R"]["trained"] - u2 >= 0.5, got
    assert u4 >= 0.5 and u4 - u2 >= 0.3, got
