"""Science check of the bayesian-icl study (spec mechanisms.md, bayesian-icl; Xie et al. 2022),
on the cpu preset: in-context accuracy grows with the number of examples k, and at the largest
k the trained model is close to the exact Bayes-optimal in-context predictor.

Margins, fixed before the runs that are reported with them (never loosened):

- grows with k: on in-distribution prompts, at every example length l, accuracy at the largest
  k is above zero-shot (k = 0) by more than 0.02, and by at least 0.05 averaged over l;
- near Bayes: at the largest k and the longest examples, the model is within 10 points of the
  Bayes-optimal predictor on the same prompts (Bayes − model ≤ 0.10);
- the LSTM learns in context too (the seed's finding): its accuracy at the largest k is above
  its zero-shot accuracy by at least 0.05 averaged over l (fixed after seed 0's run, before
  seeds 1 and 2).

The seed is ``ICLAB_SCIENCE_SEED`` (default 0, what CI runs); seeds 0, 1 and 2 are checked by hand.

Measured 2026-12-06 on the shared 2-core machine (one thread; 170-255 s of CPU for this
test, 3.9-8.1 minutes of wall time under a load of 5-9; the transformer trains at about
4 steps per CPU-second, the LSTM at about 24), in-distribution accuracy at k = 0 -> 16,
transformer (Bayes-optimal)::

    seed 0: l = 3 0.74 -> 0.84 (0.79 -> 1.00)  l = 5 0.89 -> 0.98 (0.94 -> 1.00)  l = 8 0.91 -> 0.97 (0.97 -> 1.00)
    seed 1: l = 3 0.76 -> 0.90 (0.82 -> 1.00)  l = 5 0.82 -> 0.93 (0.91 -> 1.00)  l = 8 0.89 -> 0.95 (0.98 -> 1.00)
    seed 2: l = 3 0.83 -> 0.93 (0.86 -> 0.99)  l = 5 0.84 -> 0.95 (0.92 -> 1.00)  l = 8 0.90 -> 0.97 (0.94 -> 1.00)

LSTM gains from k = 0 to 16 (l = 3, 5, 8): seed 0 +0.16 +0.12 +0.04, seed 1 +0.16 +0.10
+0.04, seed 2 +0.13 +0.04 +0.03 (means 0.11, 0.10, 0.07).

The near-Bayes check is on the longest examples only: at l = 3 the gap is 6 to 16 points, and
even the Bayes-optimal language model of the pretraining documents is 3 to 9 points short
of the Bayes-optimal in-context predictor there (it does not know that the examples share
their start property, nor that each starts at a fresh entity).
"""

from __future__ import annotations

import os

import pytest

import iclab
from iclab.probes.ginc_accuracy import cell_label
from iclab.rows import Rows

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("ICLAB_SCIENCE_SEED", "0"))
GAIN_EACH, GAIN_MEAN, BAYES_MARGIN = 0.02, 0.05, 0.10


def test_cpu_preset_accuracy_grows_with_k_toward_bayes(tmp_path):
    run = iclab.run("bayesian-icl", "cpu", overrides={"seed": SEED}, out=tmp_path)
    rows = run.load_rows().where(probe="ginc")
    last = max(s for s in rows.unique("step") if s is not None)
    final = Rows(rows.where(step=last, model="transformer"))
    ks = sorted(set(final.where(metric="accuracy").unique("pos")))
    lengths = sorted({int(lab.rsplit("=", 1)[1]) for lab in final.unique("label") if lab.startswith("id ")})
    K = ks[-1]

    def v(metric, l, k):
        return final.value(metric, label=cell_label("id", l), pos=k)

    print(f"\nseed {SEED}, step {last}: in-distribution accuracy, model / Bayes-optimal")
    for l in lengths:
        print(f"  l = {l}: " + "  ".join(f"k={k} {v('accuracy', l, k):.3f}/{v('bayes_accuracy', l, k):.3f}"
                                         for k in ks))
    gains = [v("accuracy", l, K) - v("accuracy", l, ks[0]) for l in lengths]
    assert ks[0] == 0 and all(g > GAIN_EACH for g in gains), gains
    assert sum(gains) / len(gains) >= GAIN_MEAN, gains
    l_max = lengths[-1]
    assert v("bayes_accuracy", l_max, K) - v("accuracy", l_max, K) <= BAYES_MARGIN, \
        (v("bayes_accuracy", l_max, K), v("accuracy", l_max, K))
    lstm = rows.where(step=last, model="lstm", metric="accuracy")
    lstm_gains = [lstm.value(label=cell_label("id", l), pos=K) - lstm.value(label=cell_label("id", l), pos=0)
                  for l in lengths]
    print("  LSTM, k = 0 -> K: " + "  ".join(f"l={l} +{g:.3f}" for l, g in zip(lengths, lstm_gains)))
    assert sum(lstm_gains) / len(lstm_gains) >= GAIN_MEAN, lstm_gains
