"""Study ``icg-generalization``: in-context generation (ICG) and its generalization.

Spec: ``shared/spec/icg.md`` (Jiang et al., "On the In-context Generation of Language
Models", EMNLP 2024). Train a causal LM on documents of the ICG world (a mode, an
outline of topics, paragraphs written from compositional topics; only repeated topics R
are ever repeated in training), then measure ICTR_X(k), the share of sampled next
paragraphs that continue the prompt's topic, for X ∈ {R, C, U} and k shots, against the
untrained model (step 0) and the Bayes-optimal predictor of the training distribution
(which repeats R topics and not C or U). ICTR on C and U above that reference is ICG
generalization. With ``--model PATH`` a saved model over the world's 324 tokens is
measured instead of training one (e.g. a model of another run on another world setting).

Knobs: composition arity M (``world.arity``, with ``world.n_subtopics`` K), the share of
repeated topics r_R (``world.r_repeat``), γ (``world.gamma``), model size
(``model.size``, a row of :data:`SIZES`), heads H (``model.n_heads``) and the attention
window W (``model.window``: sliding-window attention, any length, shorter than a
paragraph too). The preset's ``sweep:`` section is the default grid of ``iclab sweep``;
:func:`~iclab.studies.icg_generalization.sweep.sweep_report` opens with what the sweep found for the seed's findings
2–5, chosen by the grid's axes (:mod:`~iclab.studies.icg_generalization.findings`), and draws the sweep's figures
(heat map over M × r_R with R/C/U cells per model, ICTR against W, γ or H, ICTR vs k, phase plot over r_R). The
presets ``finding2`` … ``finding5`` are one such grid per finding, each under half an hour on one CPU thread.

Choices stated here (the paper's generator and training recipe are not public): a
malformed generation (a special token among its L tokens) counts as not repeating;
attribution is the argmax over all topics; the ``cpu`` preset shrinks the world (8
paragraphs of 12 tokens, 81 topics at both M = 2 and M = 4, γ = 0.3, p_rep = 0.5) so
that a 0.6M-parameter model learns it in a few minutes on 2 CPU cores.

Files: ``config.py`` (model sizes, ICTR settings), ``measure.py`` (training and ICTR rows),
``report.py`` (the run's report), ``sweep.py`` (the sweep's figures), ``findings.py`` (what a sweep found for
findings 2–5), ``figures.py``.
"""

from iclab.studies.icg_generalization.config import (SIZES, ICGGeneralizationConfig, ICGModel, ICTRSettings,
                                                     footprint)
from iclab.studies.icg_generalization.measure import measure
from iclab.studies.icg_generalization.report import report
from iclab.studies.icg_generalization.sweep import sweep_report
from iclab.studies.study import Study

STUDY = Study("icg-generalization", config=ICGGeneralizationConfig, measure=measure, report=report,
              sweep_report=sweep_report, footprint=footprint)

__all__ = ["STUDY", "SIZES", "ICGGeneralizationConfig", "ICGModel", "ICTRSettings"]
