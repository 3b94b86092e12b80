"""Probes, registered by name: measurements on a model that return rows (and arrays for figures).

Every probe has one contract (:class:`iclab.probes.base.Probe`): validated parameters in
the constructor, then ``probe(model, prompts) -> ProbeResult``, where ``prompts`` carries
everything the measurement needs. Adding a probe is one file with one class plus a line in
``_REGISTRY`` below; the shared contract checks (``tests/probes/test_probe_contract.py``)
then run on it.
"""

from __future__ import annotations

from iclab.errors import UnknownNameError
from iclab.probes.ablation import HeadAblation
from iclab.probes.activation_patching import ActivationPatching
from iclab.probes.attention_patterns import AttentionPatterns
from iclab.probes.base import Probe
from iclab.probes.classification import Classification
from iclab.probes.decodability import TaskDecodability
from iclab.probes.dla import DirectLogitAttribution
from iclab.probes.function_vectors import FunctionVectors
from iclab.probes.ginc_accuracy import GINCAccuracy
from iclab.probes.graph_tracing import GraphTracing
from iclab.probes.icl_score import ICLScore
from iclab.probes.ictr import ICTR
from iclab.probes.label_scoring import LabelScoring
from iclab.probes.induction import InductionScores
from iclab.probes.linear_probe import LinearProbe
from iclab.probes.logit_lens import LogitLens
from iclab.probes.task_accuracy import TaskAccuracy
from iclab.probes.task_vectors import TaskVectorPatching

_REGISTRY: dict[str, type[Probe]] = {p.name: p for p in [
    InductionScores, ICLScore, HeadAblation, ICTR, GraphTracing, TaskDecodability, TaskAccuracy, TaskVectorPatching,
    GINCAccuracy, FunctionVectors, ActivationPatching, LogitLens, DirectLogitAttribution, AttentionPatterns,
    LinearProbe,
    LabelScoring,
    Classification,
]}


def probe_names() -> list[str]:
    """Names of the registered probes, sorted."""
    return sorted(_REGISTRY)


def probe_class(name: str) -> type[Probe]:
    """The probe class registered as ``name``; lists the known names if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("probe", name, probe_names()) from None


def make_probe(name: str, **params) -> Probe:
    """Build the probe registered as ``name`` with validated parameters."""
    return probe_class(name)(**params)


__all__ = ["Probe", "make_probe", "probe_class", "probe_names", *(c.__name__ for c in _REGISTRY.values())]
