"""Study ``graph-tracing``: in-context learning of representations (Park et al., ICLR 2025).

Spec: ``shared/spec/graph_tracing.md``. A graph's nodes carry labels the model knows
(tokens of a model trained here, common words for a pretrained LM); the context is a
random walk on the graph written as those labels. As a function of context length (and
layer) the study measures rule-following accuracy (is the top predicted label a
neighbour of the current node?), the mean representation of each node over a trailing
window, its normalised Dirichlet energy over the graph, and the agreement of its top
principal components with the graph's spectral embedding
(:class:`iclab.probes.graph_tracing.GraphTracing`).

Built-in path: pretrain a small Llama on random walks over many random graphs with fresh
random labels per sequence (:class:`iclab.worlds.graph_pretrain.RandomGraphWalks`), so
that next-token prediction needs the graph inferred from the context; then trace a new
labelled graph (``graph``, a 4×4 grid by default). Pretrained path (``--model``): the
same probe on walks of common single-token words, plus the semantic-conflict variant
(days or months on a scrambled ring: does the in-context ring show in the principal
components, and in which ones?).

Files: ``config.py`` (what can be set), ``measure.py`` (pretraining and tracing, rows and
arrays into the run), ``report.py`` (figures and prose from the stored run), ``figures.py``,
``sweep.py`` (finding 1 over a sweep's trials, e.g. ``iclab sweep graph-tracing --preset finding1``).
"""

from iclab.studies.graph_tracing.config import GraphTracingConfig, PretrainedSettings, ProbeSettings, footprint
from iclab.studies.graph_tracing.measure import measure
from iclab.studies.graph_tracing.report import report
from iclab.studies.graph_tracing.sweep import sweep_report
from iclab.studies.study import Study

STUDY = Study("graph-tracing", config=GraphTracingConfig, measure=measure, report=report, sweep_report=sweep_report,
              footprint=footprint)

__all__ = ["STUDY", "GraphTracingConfig", "PretrainedSettings", "ProbeSettings"]
