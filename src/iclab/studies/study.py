"""A study: one seed experiment, as one explicit object.

``Study(name, config=..., measure=..., report=...)`` composes the rest of iclab:

- ``config``: a frozen pydantic class; presets in ``iclab/configs/<study>/*.yaml`` validate into it.
- ``measure(cfg, run, model)``: trains (or, with ``model`` a name or path, loads a pretrained
  causal LM), probes, and writes rows (``run.save_rows``) and the arrays its figures need
  (``run.save_arrays``) into the run directory. Nothing else leaves it.
- ``report(cfg, run) -> Report``: figures and prose built from the stored run alone
  (its config, ``results.parquet`` and ``arrays/``), never from a model, so
  ``iclab report RUN_DIR`` rebuilds every figure, and a figure can be changed without
  retraining.
- ``sweep_report(trials, save_figure) -> list[Section]``, optional: the study's figures over
  a sweep's finished trials (see :mod:`iclab.sweep.report`).
- ``footprint(cfg, model) -> Footprint | None``, optional: the memory a run of ``cfg`` will
  need, estimated from the config alone (see :mod:`iclab.models.memory`), so that
  :meth:`Study.preflight` refuses a config that cannot fit before anything is written.
- ``check_model(model)``, optional: refuses (``ModelLoadError``) a ``--model`` this study cannot
  measure, cheaply and before anything is written; by default a path must hold a Hugging Face
  model (:func:`iclab.models.load.check_model_path`). A study whose models are not HF causal
  LMs (regression-icl's vector models) brings its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from iclab.config import load_config, validate
from iclab.errors import ConfigError
from iclab.models.memory import Footprint, check_fits
from iclab.runs.report import Report, Section
from iclab.runs.run import Run

Measure = Callable[[Any, Run, "str | None"], None]
MakeReport = Callable[[Any, Run], Report]
SweepReport = Callable[[list, Callable[[Any, str], str]], list[Section]]
EstimateFootprint = Callable[[Any, "str | None"], "Footprint | None"]
CheckModel = Callable[[str], None]


@dataclass(frozen=True)
class Study:
    """One seed experiment; see the module docstring."""

    name: str
    config: type[BaseModel]
    measure: Measure
    report: MakeReport
    sweep_report: SweepReport | None = None
    footprint: EstimateFootprint | None = None
    check_model: CheckModel | None = None

    def load_config(self, preset: str = "cpu", overrides: dict[str, Any] | None = None) -> BaseModel:
        """The validated config of ``preset`` with ``overrides`` (dotted keys) applied."""
        return load_config(self.config, self.name, preset, overrides)

    def config_of(self, run: Run) -> BaseModel:
        """The validated config saved with ``run``; a damaged ``config.yaml`` is a ConfigError naming it."""
        path = Path(run.path) / "config.yaml"
        try:
            data = yaml.safe_load(run.config_yaml)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            reason = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"{path} is damaged and cannot be read ({reason})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is damaged: it holds a {type(data).__name__}, not a config mapping")
        return validate(self.config, data, str(path))

    def preflight(self, cfg: BaseModel, model: str | None = None) -> None:
        """Refuse, before anything is written or allocated, a run that cannot start: a ``model``
        path that does not exist or does not hold a model, or a config whose estimated memory
        is more than the machine (or GPU) has."""
        if model and self.check_model is not None:
            self.check_model(model)
        elif model:
            from iclab.models.load import check_model_path

            check_model_path(model)
        if self.footprint is not None:
            check_fits(self.footprint(cfg, model), f"this {self.name} run")
