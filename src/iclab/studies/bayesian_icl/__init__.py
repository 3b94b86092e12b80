"""Study ``bayesian-icl``: in-context learning as implicit Bayesian inference on the GINC world.

Spec: ``shared/spec/mechanisms.md``, bayesian-icl (Xie, Raghunathan, Liang and Ma, "An
Explanation of In-context Learning as Implicit Bayesian Inference", ICLR 2022). Train a
causal LM on documents of a mixture of HMMs ("concepts", :class:`iclab.worlds.ginc.GINCWorld`),
then measure in-context accuracy (the argmax next token after a prompt of k examples of
length l is the answer) against k for each l, on in-distribution prompts and on
out-of-distribution ones (unseen concepts; delimiters removed or shuffled), at step 0, over
training and at the end. Every cell is compared with the exact Bayes-optimal in-context
predictor (posterior over concepts by the forward algorithm) on the same prompts, and with
the Bayes-optimal language model of the pretraining documents, which a trained model
approximates. With ``--model PATH`` a saved model over the world's tokens is measured.

What it shows: accuracy grows with k (and l) and approaches the Bayes-optimal predictor;
zero-shot against few-shot; accuracy falls on unseen concepts and on prompts whose format
differs from the examples of pretraining.

Choices stated here: the seed's LSTM baseline is the optional ``lstm`` section (an
embedding, stacked LSTM layers and a linear read-out, :mod:`iclab.models.lstm`, trained on
the same documents in the same order, measured by the same probe; no dropout, GINC's had
0.2); the ``cpu`` preset shrinks the world and, to satisfy the paper's assumptions on the
prompt distribution, gives the chains a floor and makes delimiter transitions shared by all
concepts (see ``iclab/configs/bayesian-icl/cpu.yaml`` and the world's docstring).

Files: ``config.py`` (what can be set), ``measure.py`` (training and probe rows into the
run), ``report.py`` (figures, tables and the summary from the stored rows), ``figures.py``.
"""

from iclab.studies.bayesian_icl.config import BayesianICLConfig, LSTMBaseline, ProbeSettings, footprint
from iclab.studies.bayesian_icl.measure import measure
from iclab.studies.bayesian_icl.report import report
from iclab.studies.study import Study

STUDY = Study("bayesian-icl", config=BayesianICLConfig, measure=measure, report=report,
              footprint=footprint)

__all__ = ["STUDY", "BayesianICLConfig", "LSTMBaseline", "ProbeSettings"]
