"""Study ``label-semantics``: do demonstrations teach the labels, or only the format?

Spec: ``shared/spec/mechanisms.md``, label-semantics (Min et al., "Rethinking the Role of
Demonstrations: What Makes In-Context Learning Work?", EMNLP 2022; Wei et al., "Larger
language models do in-context learning differently", 2023).

**Pretrained models** (``--model NAME_OR_PATH``, else each of ``models``). Classification
sets given as demonstrations (the shipped sentiment, topic and entailment sets, or a user's
CSV/JSONL as ``data.path``): gold, random, flipped and semantically unrelated labels
(foo/bar), no labels, out-of-distribution inputs, each against zero-shot, at each k of
``probe.shots``. A prediction is the argmax over the label tokens' logits at the answer
position (:mod:`iclab.probes.label_scoring`; a label that is not one token is refused,
naming it). Several models (``models``, or a sweep with one model a trial) give the scale
curve.

**A model trained here** (``models: []`` and no ``--model``). A causal LM trained on the
label-map world (:class:`~iclab.worlds.label_map.LabelMapWorld`), where inputs have fixed
labels (the labels' meaning) and some sequences remap them in context; then the same
conditions over its tokens, at every probe step.

What it shows: random labels cost little against gold, while removing the labels or the
input distribution costs more (Min et al.); small models keep their semantic priors against
flipped labels, large ones follow them below chance and learn unrelated labels (Wei et al.);
a model trained here follows flipped labels once pretraining has rewarded reading the map
from context.

Files: ``config.py``; ``conditions.py`` (the variants as text), ``trained.py`` (as tokens of
the world); ``measure.py`` (rows into the run); ``report.py``; ``figures.py``; ``sweep.py``
(the scale curve over a sweep's trials).
"""

from iclab.studies.label_semantics.config import LabelSemanticsConfig, ProbeSettings, footprint
from iclab.studies.label_semantics.measure import measure
from iclab.studies.label_semantics.report import report
from iclab.studies.label_semantics.sweep import sweep_report
from iclab.studies.study import Study

STUDY = Study("label-semantics", config=LabelSemanticsConfig, measure=measure, report=report,
              sweep_report=sweep_report, footprint=footprint)

__all__ = ["STUDY", "LabelSemanticsConfig", "ProbeSettings"]
