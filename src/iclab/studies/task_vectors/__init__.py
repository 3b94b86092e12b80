"""Study ``task-vectors``: task encoding and decoding (Han, Song, Gore and Agrawal, ICML 2025).

Spec: ``shared/spec/task_vectors.md``.

**Synthetic part** (no ``--model``). Train a transformer with a linear read-in/read-out
(:class:`~iclab.models.vector.VectorModel`) on the mixture of sparse linear regressions
(:class:`~iclab.worlds.regression.SparseLinearMixture`). At step 0, every
``train.eval_every`` steps and at the end, on a fixed set of prompts stratified by basis:
the loss (MSE over all positions) per basis, task decodability (TD) at every layer of the
residual stream at the last ``x`` (the token before the answer, as the spec defines TD), and
the representation of the ``y`` token of the last demonstration at a middle layer (saved under
``arrays/`` of the run for the PCA/UMAP panels; TD is measured there too). The marked steps
are the first probe steps at which the mean loss has made a given share of its largest gain
over predicting 0.
After training: squared error against the number of in-context examples, per basis, for
the transformer and the baselines (least squares, ridge, Lasso, Lasso on the true basis,
averaging).

**Natural part** (``--model NAME_OR_PATH``, a causal LM with its tokenizer). For each task
family (bitwise arithmetic, POS tagging, each with its Null task) and each shot count:
greedy exact-match accuracy per task, TD per layer at the query's ``->`` (the token before
the answer), and the scatter of TD against accuracy with its R²; a "prompting" control
(the task stated in words, zero shots); task-vector patching (replace or add the mean
demonstration state at the query's ``->``, true task vs Null, over several seeds); and,
if enabled, fine-tuning (LoRA or full) of the first vs the last layers.

What it shows: the loss falls basis by basis, and as it falls the representations of the
bases separate and TD rises (coupled emergence); in pretrained LMs, TD at the best layer
tracks accuracy across tasks and shot counts, and the true task's vector moves accuracy
while the Null vector does not.

Files: ``config.py``; ``synthetic.py`` and ``natural.py`` (what is measured, rows and arrays
into the run); ``synthetic_report.py`` and ``natural_report.py`` (figures and prose from the
stored run); ``curves.py`` (curves read off the rows, shared by both); ``figures.py``.
"""

from iclab.runs.report import Report
from iclab.runs.run import Run
from iclab.studies.study import Study
from iclab.studies.task_vectors.config import (NaturalSettings, PatchingSettings, SyntheticSettings,
                                               TaskVectorsConfig, footprint)
from iclab.studies.task_vectors.natural import measure_pretrained
from iclab.studies.task_vectors.natural_report import report_pretrained
from iclab.studies.task_vectors.synthetic import measure_trained
from iclab.studies.task_vectors.synthetic_report import report_trained


def measure(cfg: TaskVectorsConfig, run: Run, model_name: str | None = None) -> None:
    """The synthetic part on a model trained here, or the natural part on ``model_name``."""
    return measure_pretrained(cfg, run, model_name) if model_name else measure_trained(cfg, run)


def report(cfg: TaskVectorsConfig, run: Run) -> Report:
    model_name = run.meta.get("model")
    return report_pretrained(cfg, run, model_name) if model_name else report_trained(cfg, run)


STUDY = Study("task-vectors", config=TaskVectorsConfig, measure=measure, report=report, footprint=footprint)

__all__ = ["STUDY", "NaturalSettings", "PatchingSettings", "SyntheticSettings", "TaskVectorsConfig"]
