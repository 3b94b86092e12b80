"""Study ``regression-icl``: what can transformers learn in context? (Garg, Tsipras, Liang and
Valiant 2022; Akyürek et al. 2023; von Oswald et al. 2023).

Spec: ``shared/spec/mechanisms.md``, regression-icl. Train a transformer with a linear
read-in and read-out (:class:`~iclab.models.vector.VectorModel`: ``x_1, y_1, x_2, y_2, ...``
interleaved, ``y`` padded with zeros to ``d`` dims, the prediction of ``y_i`` read at the token
of ``x_i``) on prompts of one function class, chosen by ``world.kind``: linear, sparse linear,
noisy linear, depth-4 decision trees or 2-layer ReLU nets, with ``x ~ N(0, I_d)`` and
optionally a curriculum over the number of points and the active dimensions. Then, on the
same prompts, the model and every baseline that fits the class (least squares, ridge, Lasso,
3-NN, averaging, gradient descent on the prompt, greedy and boosted trees, a 2-layer net by
GD): squared error against the number of in-context examples, divided by ``E[f(x)²]`` (d for
the dense classes, as Garg et al. do; s for sparse, 1 for trees), with bootstrap bands; the
model against least squares under distribution shifts (scaled x, skewed covariance, orthant
prompts, noisy y, a query outside the examples' span); and a linear probe per layer for the
least-squares weight vector and the GD iterate in the hidden states (Akyürek et al.), on the
trained and the untrained model. With ``--model DIR``, a VectorModel saved by an earlier run is
evaluated instead of training one.

What it shows (Garg et al.): on linear functions the model matches least squares, error
falling to the noise floor by n = d (with label noise, least squares peaks at n = d); on sparse
ones it tracks Lasso; on trees it beats greedy tree learning; on ReLU nets it does as well as a
net trained by GD on the prompt. The report states for this run whether it does.

Where iclab differs from Garg et al.'s code: AdamW with warm-up and a schedule from
``train`` (their Adam at a constant 1e-4 is the paper preset); error bands from 1000 bootstrap
resamples as theirs, but over ``eval.n_prompts`` prompts; the dims curriculum zeroes inactive
coordinates of x but keeps a sparse w's support over all d; their XGBoost is scikit-learn's
gradient boosting; their 2-layer-net baseline trains on the whole prompt each step.

Files: ``config.py`` (what can be set, the baselines of each class), ``measure.py`` (training,
error curves, shifts, probe: rows and arrays into the run), ``shifts.py`` (the shifted prompts),
``report.py`` (figures, tables and the summary from the stored run), ``figures.py``.
"""

from iclab.studies.regression_icl.config import RegressionICLConfig, footprint
from iclab.studies.regression_icl.measure import check_vector_model, measure
from iclab.studies.regression_icl.report import report
from iclab.studies.study import Study

STUDY = Study("regression-icl", config=RegressionICLConfig, measure=measure, report=report, footprint=footprint,
              check_model=check_vector_model)

__all__ = ["STUDY", "RegressionICLConfig"]
