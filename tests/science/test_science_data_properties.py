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

Measured 2026-12-06 on the shared 2-core machine (one thread; 208-231 s of CPU for this test,
8.5-9 minutes of wall time under a load of 4-7), final accuracy at step 800 (holdout ICL of
the bursty / non-bursty model; IWL, no support, of each), and the step of the transition of the
bursty model's ICL from 0.5 to ~1::

    seed 0: ICL 1.000 / 0.027   IWL 0.080 / 0.068   transition at steps 400-450
    seed 1: ICL 0.998 / 0.035   IWL 0.055 / 0.064   transition at steps 200-250
    seed 2: ICL 1.000 / 0.033   IWL 0.082 / 0.086   transition at steps 150-200

The second check, on the ``transience`` preset (4096 classes, 3000 steps, bursty model only), is
Singh et al. (2023)'s transient ICL: holdout ICL peaks at ≥ 0.8, then ends ≤ 0.2 while IWL ends
≥ 0.9 (margins fixed after seed 0's 6000-step exploration, before any run of the preset).
Measured 2026-12-06 (one thread, 168-185 s a run), holdout ICL peak (step) -> at step 3000, and IWL
at step 3000::

    seed 0: 0.98 (200) -> 0.04, IWL 1.00; ICL first <= 0.2 at step 1200
    seed 1: 0.99 (300) -> 0.02, IWL 1.00; ICL first <= 0.2 at step 900
    seed 2: 0.95 (200) -> 0.03, IWL 1.00; ICL first <= 0.2 at step 1000

History, not hidden: the first version of the preset trained 400 steps, and seed 0 failed this
check with it (bursty ICL 0.494, still on the 0.5 plateau at step 400; non-bursty 0.029). The
preset then went to 800 steps, chosen on development seeds 10-14 (transitions at steps 200-300)
and that failure; the margins were not changed. Seeds 0 and 1 had also been among the seeds of
earlier pilots of the world (transitions at step 250 there, in a slightly different world).
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


#: transient ICL (Singh et al. 2023) on the ``transience`` preset: fixed after seed 0's 6000-step
#: run (peak 0.98, 0.03 at the end, IWL 1.00) and before any run of the 3000-step preset
PEAK_MIN, FADED_MAX, IWL_MIN = 0.8, 0.2, 0.9


def test_transience_preset_icl_emerges_then_fades_as_iwl_takes_over(tmp_path, science_seed):
    """Holdout ICL peaks at ≥ 0.8 during training, then ends ≤ 0.2 (below the 0.5 of picking one of
    the context's labels: the model answers with the class's trained label), while IWL ends ≥ 0.9."""
    run = iclab.run("data-properties", "transience", overrides={"seed": science_seed}, out=tmp_path)
    rows = run.load_rows().where(probe="classification", metric="accuracy", model="p_bursty=0.9")
    steps, icl = rows.where(label="fewshot-holdout").series("step")
    iwl = rows.where(label="no-support", step=int(steps[-1])).value()
    print(f"\nseed {science_seed}: holdout ICL " + " ".join(f"{int(s)}:{v:.2f}" for s, v in zip(steps, icl)) +
          f"; IWL at the end {iwl:.2f}")
    assert max(icl) >= PEAK_MIN, icl
    assert icl[-1] <= FADED_MAX, icl
    assert iwl >= IWL_MIN, iwl
