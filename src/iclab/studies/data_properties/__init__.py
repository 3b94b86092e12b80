"""Study ``data-properties``: data distributional properties drive emergent in-context learning.

Spec: ``shared/spec/mechanisms.md``, data-properties (Chan, Santoro, Lampinen, Wang, Singh,
Richemond, McClelland and Hill, "Data Distributional Properties Drive Emergent In-Context
Learning in Transformers", NeurIPS 2022). Train a causal LM on sequences of exemplar–label
pairs and a query from the symbolic world :class:`iclab.worlds.bursty_classes.BurstyClasses`
(classes of noisy exemplars over feature tokens, a label token per class, a Zipf law over
classes, a share p_bursty of bursty sequences), one model per burstiness (``world.p_bursty``
and ``controls``), from the same initial weights and data seed. Over training, measure
in-context learning (ICL: accuracy on holdout classes, never trained, with labels fresh to
each sequence) and in-weights learning (IWL: accuracy on trained classes absent from the
context), with :class:`iclab.probes.classification.Classification`. With ``--model PATH``
a saved model over the world's tokens is measured.

What it shows: bursty training gives ICL on holdout classes well above chance, non-bursty
training does not; over a sweep of p_bursty × Zipf exponent (``sweep.py``: heat maps), ICL
grows with burstiness and IWL with the skew of the class distribution; the curves over
training show whether ICL is transient.

Choices stated here: the world's departures from Chan et al.'s generator are listed in its
docstring (token-string exemplars, fresh labels drawn from every label, distinct burst
classes, optional loss on every token). The ``cpu`` preset shrinks the problem until the
finding shows in minutes: exemplars of 2 tokens over 256 features without within-class
variation, 16,384 classes sharing 32 labels (so that memorising classes is out of reach and
a burst can only be solved in context), a 2-layer attention-only model of width 128, and the
loss on every token (the induction signal of repeated exemplars trains the same copying
circuit that reads labels); see ``iclab/configs/data-properties/cpu.yaml``.

Files: ``config.py`` (what can be set), ``measure.py`` (training and probe rows into the
run), ``report.py`` (figures, tables and findings from the stored rows), ``sweep.py`` (the
sweep's heat maps), ``figures.py``.
"""

from iclab.studies.data_properties.config import DataPropertiesConfig, ProbeSettings, footprint
from iclab.studies.data_properties.measure import measure
from iclab.studies.data_properties.report import report
from iclab.studies.data_properties.sweep import sweep_report
from iclab.studies.study import Study

STUDY = Study("data-properties", config=DataPropertiesConfig, measure=measure, report=report,
              sweep_report=sweep_report, footprint=footprint)

__all__ = ["STUDY", "DataPropertiesConfig", "ProbeSettings"]
