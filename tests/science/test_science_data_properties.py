"""Science check of the data-properties study (spec mechanisms.md, data-properties; Chan et al.
2022), on the cpu preset: bursty training gives in-context learning on holdout classes (never
trained, labels fresh to each sequence) well above chance, non-bursty training does not.

Margins, fixed before the runs that are reported with them (never loosened), on the final
accuracy (argmax over every label token) on 512 four-shot two-way sequences of holdout classes,
chance 1 / ways = 0.5:

- the bursty model (p_bursty = 0.9): accuracy ≥ 0.8 (chance + 0.3);
- the non-bursty control (p_bursty = 0): accuracy ≤ 0.6 (chance + 0.1);
- bursty − non-bursty ≥ 0.3.

The seed is ``ICLAB_SCIENCE_SEED`` (default 0, what CI runs); seeds 0, 1 and 2 are checked by hand.
"""

from __future__ import annotations

import pytest

import iclab

pytestmark = pytest.mark.slow

BURSTY_MIN, CONTROL_MAX, GAP_MIN = 0.8, 0.6, 0.3


def test_cpu_preset_bursty_training_gives_icl_and_non_bursty_does_not(tmp_path, science_seed):
    run = iclab.run("data-properties", "cpu", overrides={"seed": science_seed}, out=tmp_path)
    rows = run.load_rows().where(probe="classification", label="fewshot-holdout", metric="accuracy")
    last = max(s for s in rows.unique("step") if s is not None)
    bursty = rows.value(model="p_bursty=0.9", step=last)
    control = rows.value(model="p_bursty=0", step=last)
    iwl = run.load_rows().where(probe="classification", label="no-support", metric="accuracy", step=last)
    curve = rows.where(model="p_bursty=0.9").series("step")
    print(f"\nseed {science_seed}, step {last}: ICL (holdout) bursty {bursty:.3f}, non-bursty {control:.3f}; "
          f"IWL bursty {iwl.value(model='p_bursty=0.9'):.3f}, non-bursty {iwl.value(model='p_bursty=0'):.3f}; "
          "bursty ICL over training " + " ".join(f"{int(s)}:{v:.2f}" for s, v in zip(*curve)))
    assert bursty >= BURSTY_MIN, bursty
    assert control <= CONTROL_MAX, control
    assert bursty - control >= GAP_MIN, (bursty, control)
