"""Science check of the label-semantics study's trained part (spec mechanisms.md, label-semantics;
Min et al. 2022, Wei et al. 2023), on the cpu preset with ``models: []``: a model trained on the
label-map world learns the labels' meaning, keeps it against one flipped demonstration, and
follows flipped and unrelated labels when several demonstrations show them.

With the preset's world (2 classes, labels remapped in 10% of sequences, unrelated in 20%, each
label random with probability 0.2) the Bayes-optimal answer keeps the prior at k = 1 and follows
the flipped map from k = 2 (see :mod:`iclab.worlds.label_map`).

Margins, fixed before the runs reported here (never loosened):

- the meaning is learned: zero-shot accuracy >= 0.9;
- one flipped demonstration does not override it: at k = 1 flipped prompts are answered with
  the flipped label in at most 0.3 of them;
- several do: at k = 8 flipped labels are followed in at least 0.8 of prompts (accuracy against
  the gold labels below chance), and unrelated labels reach accuracy >= 0.8.

The seed is ``ICLAB_SCIENCE_SEED`` (default 0, what CI runs).

History: with unrelated labels in 10% of sequences and 1,500 steps, seed 0 passed (unrelated
labels 1.00 at k = 8) but seed 1 left them unlearned (0.45); the preset then moved to 20% and
2,000 steps, before the runs below.

Measured 2026-12-06 on the shared 2-core machine (one thread, three seeds at once under load,
16 minutes of wall time each), zero-shot; flipped labels followed at k = 1, at k = 8; unrelated
labels at k = 8::

    seed 0: 1.00; 0.08, 1.00; 1.00   (passes)
    seed 1: 1.00; 0.32, 1.00; 1.00   (fails the k = 1 margin: one flipped demonstration is followed
                                      in a third of prompts, where the Bayes-optimal predictor
                                      follows none)
    seed 2: 1.00; 0.25, 1.00; 1.00   (passes)

Seed 1's failure is not a margin problem: the model had not yet converged to the world's
answer at k = 1. The preset then went from 2,000 to 3,000 steps (margins unchanged), and all
three seeds pass, measured 2026-12-06 (one thread, under load, 2.5-5 minutes each)::

    seed 0: 1.00; 0.00, 1.00; 1.00
    seed 1: 1.00; 0.00, 1.00; 1.00
    seed 2: 1.00; 0.00, 1.00; 1.00
"""

from __future__ import annotations

import pytest

import iclab


@pytest.mark.slow
def test_trained_model_keeps_its_prior_against_one_flipped_label_and_follows_several(tmp_path, science_seed):
    overrides = {"seed": science_seed, "models": [], "probe.shots": [1, 8], "probe.n_queries": 100,
                 "probe.conditions": ["gold", "flipped", "unrelated"]}
    run = iclab.run("label-semantics", "cpu", overrides=overrides, out=tmp_path)
    rows = run.load_rows().where(probe="label_scoring", model="trained")
    final = rows.where(step=max(s for s in rows.unique("step") if s is not None))

    def acc(cond, k, metric="accuracy"):
        return final.value(metric, label=f"label-map/{cond}", pos=k)

    zero, follow1, follow8 = acc("zero-shot", 0), acc("flipped", 1, "context_accuracy"), \
        acc("flipped", 8, "context_accuracy")
    sul = acc("unrelated", 8)
    print(f"\nseed {science_seed}: zero-shot {zero:.2f}; flipped followed {follow1:.2f} at k = 1, {follow8:.2f} at "
          f"k = 8; unrelated {sul:.2f} at k = 8")
    assert zero >= 0.9
    assert follow1 <= 0.3
    assert follow8 >= 0.8 and acc("flipped", 8) < 0.5
    assert sul >= 0.8
