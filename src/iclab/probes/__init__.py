"""Probes, registered by name: measurements on a model that return rows (and arrays for figures).

Every probe has one contract (:class:`iclab.probes.base.Probe`): validated parameters in
the constructor, then ``probe(model, prompts) -> ProbeResult``, where ``prompts`` carries
everything the measurement needs. Adding a probe is one file with one class plus a line in
``_REGISTRY`` below (its name, module and class); the shared contract checks (``tests/probes/test_probe_contract.py``)
then run on it.
"""

from __future__ import annotations

import importlib

from iclab.errors import UnknownNameError
from iclab.probes.base import Probe

# name -> (module under iclab.probes, class). Modules are imported when their probe is asked
# for: a study that measures induction scores should not pay for scikit-learn's import.
_REGISTRY: dict[str, tuple[str, str]] = {
    "induction": ("induction", "InductionScores"),
    "icl": ("icl_score", "ICLScore"),
    "ablation": ("ablation", "HeadAblation"),
    "ictr": ("ictr", "ICTR"),
    "graph": ("graph_tracing", "GraphTracing"),
    "td": ("decodability", "TaskDecodability"),
    "accuracy": ("task_accuracy", "TaskAccuracy"),
    "patching": ("task_vectors", "TaskVectorPatching"),
    "ginc": ("ginc_accuracy", "GINCAccuracy"),
    "function_vectors": ("function_vectors", "FunctionVectors"),
    "activation_patching": ("activation_patching", "ActivationPatching"),
    "logit_lens": ("logit_lens", "LogitLens"),
    "dla": ("dla", "DirectLogitAttribution"),
    "attention_patterns": ("attention_patterns", "AttentionPatterns"),
    "linear_probe": ("linear_probe", "LinearProbe"),
    "label_scoring": ("label_scoring", "LabelScoring"),
    "classification": ("classification", "Classification"),
}


def probe_names() -> list[str]:
    """Names of the registered probes, sorted."""
    return sorted(_REGISTRY)


def probe_class(name: str) -> type[Probe]:
    """The probe class registered as ``name``; lists the known names if unknown."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("probe", name, probe_names()) from None
    return getattr(importlib.import_module(f"iclab.probes.{module}"), cls)


def make_probe(name: str, **params) -> Probe:
    """Build the probe registered as ``name`` with validated parameters."""
    return probe_class(name)(**params)


def __getattr__(attr: str) -> type[Probe]:
    """``from iclab.probes import LinearProbe`` imports that probe's module only (PEP 562)."""
    for name, (_, cls) in _REGISTRY.items():
        if cls == attr:
            return probe_class(name)
    raise AttributeError(f"module 'iclab.probes' has no attribute {attr!r}")


__all__ = ["Probe", "make_probe", "probe_class", "probe_names", *(cls for _, cls in _REGISTRY.values())]
