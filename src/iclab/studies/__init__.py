"""The studies, registered by name: one file per seed experiment.

A study is a config class (pydantic) and a function ``run_study(cfg, run, model_name)``
that trains, probes, saves rows and figures, and returns the Report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from iclab.errors import UnknownNameError


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    module: str  # imported on use, so `iclab list` stays fast

    def load(self) -> tuple[type, Callable]:
        import importlib

        mod = importlib.import_module(self.module)
        config_cls = next(v for k, v in vars(mod).items() if k.endswith("Config") and k != "Frozen"
                          and getattr(v, "__module__", None) == mod.__name__)
        return config_cls, mod.run_study


STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("induction-heads", "Induction heads form in a phase change that coincides with a drop of the ICL score "
          "(Olsson et al. 2022)", "iclab.studies.induction_heads"),
    Study("graph-tracing", "A graph given in context reorganises token representations; rule following rises with "
          "context (Park et al. 2025)", "iclab.studies.graph_tracing"),
    Study("icg-generalization", "In-context generation: trained models repeat R topics, and with compositional topics "
          "(M = 4) also unseen ones (Jiang et al. 2024)", "iclab.studies.icg_generalization"),
    Study("task-vectors", "Task encoding emerges with in-context regression; task decodability tracks accuracy "
          "and task vectors steer pretrained LMs (Han et al. 2025)", "iclab.studies.task_vectors"),
]}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise UnknownNameError("study", name, sorted(STUDIES)) from None
