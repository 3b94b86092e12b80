"""The studies, registered by name in one table: one package per seed experiment.

Each study package defines ``STUDY``, a :class:`~iclab.studies.study.Study` (config,
measure, report). The table below holds only the module and a line of description, so
``iclab list`` does not import torch; :func:`get_study` imports the module on use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from iclab.errors import UnknownNameError


@dataclass(frozen=True)
class StudyEntry:
    """A row of the registry: the study's name, what it shows, and the module defining ``STUDY``."""

    name: str
    description: str
    module: str

    def load(self):
        study = importlib.import_module(self.module).STUDY
        if study.name != self.name:
            raise RuntimeError(f"{self.module}.STUDY is named {study.name!r}, registered as {self.name!r}")
        return study


STUDIES: dict[str, StudyEntry] = {s.name: s for s in [
    StudyEntry("induction-heads", "Induction heads form in a phase change that coincides with a drop of the ICL "
               "score (Olsson et al. 2022)", "iclab.studies.induction_heads"),
    StudyEntry("graph-tracing", "A graph given in context reorganises token representations; rule following rises "
               "with context (Park et al. 2025)", "iclab.studies.graph_tracing"),
    StudyEntry("icg-generalization", "In-context generation: trained models repeat R topics, and with compositional "
               "topics (M = 4) also unseen ones (Jiang et al. 2024)", "iclab.studies.icg_generalization"),
    StudyEntry("bayesian-icl", "In-context accuracy on the GINC mixture of HMMs grows with the number of examples "
               "toward the Bayes-optimal predictor (Xie et al. 2022)", "iclab.studies.bayesian_icl"),
    StudyEntry("task-vectors", "Task encoding emerges with in-context regression; task decodability tracks "
               "accuracy and task vectors steer pretrained LMs (Han et al. 2025)", "iclab.studies.task_vectors"),
    StudyEntry("regression-icl", "Transformers trained on regression prompts match least squares, Lasso and tree "
               "learners in context (Garg et al. 2022)", "iclab.studies.regression_icl"),
    StudyEntry("label-semantics", "Gold, random, flipped and unrelated labels in the demonstrations: what in-context "
               "learning takes from the labels (Min et al. 2022; Wei et al. 2023)", "iclab.studies.label_semantics"),
    StudyEntry("demo-selection", "Demonstrations chosen at random, by embedding neighbours or BM25, and their order "
               "(Liu et al. 2022; Lu et al. 2022)", "iclab.studies.demo_selection"),
    StudyEntry("data-properties", "Bursty training data gives in-context learning on unseen classes, non-bursty data "
               "does not; Zipfian classes trade ICL for in-weights learning (Chan et al. 2022)",
               "iclab.studies.data_properties"),
]}


def study_names() -> list[str]:
    return sorted(STUDIES)


def get_study(name: str):
    """The :class:`~iclab.studies.study.Study` registered as ``name``; lists the known names if unknown."""
    try:
        entry = STUDIES[name]
    except KeyError:
        raise UnknownNameError("study", name, study_names()) from None
    return entry.load()
