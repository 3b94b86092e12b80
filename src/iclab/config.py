"""Study configs: YAML presets validated by pydantic, with ``--set key.sub=value`` overrides.

Every study declares one frozen pydantic model (``extra="forbid"``). A preset is a YAML
file ``<study>/<preset>.yaml`` in the package's ``iclab/configs/`` (installed with it as
package data; ``$ICLAB_CONFIGS`` names another folder instead); overrides are applied to the YAML's dict before
validation, so a preset and an override are checked by the same rules, and every error
names the key, the value and what is allowed, in one line.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from iclab.errors import ConfigError, UnknownNameError
from iclab.limits import MAX_BATCH, MAX_DATA_WORKERS, MAX_LIST, MAX_STEPS

C = TypeVar("C", bound=BaseModel)


class Frozen(BaseModel):
    """Base of every config section: unknown keys are refused, values cannot change, floats are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class KeepCheckpoints(Frozen):
    """Which checkpoints a training keeps (``train.keep_checkpoints``).

    Parameters
    ----------
    last : int, default 2
        The newest ``last`` checkpoints (at least 2: the previous one is what a damaged newest
        one falls back to). ``train.keep_checkpoints: 10`` is short for ``{last: 10}``.
    every : int or None, default None
        Also keep, forever, a checkpoint every ``every`` steps, and one of step 0 (the initial
        weights): a checkpoint history that ``iclab probe`` measures any probe over, so
        every probe is a curve over training without training again. A checkpoint is written
        at each multiple of ``every`` besides those of ``ckpt_every``.

    Each checkpoint holds the weights, AdamW's two moments (twice the weights) and the RNG
    state: about 3 x 4 bytes a parameter in fp32. ``iclab runs`` shows each run's.
    """

    last: int = Field(2, ge=2, le=MAX_STEPS)
    every: int | None = Field(None, ge=1, le=MAX_STEPS)

    @model_validator(mode="before")
    @classmethod
    def _count(cls, data: Any) -> Any:
        return {"last": data} if isinstance(data, int) and not isinstance(data, bool) else data

    def keeps(self, step: int) -> bool:
        """Whether a checkpoint of ``step`` is kept for the history (not only as one of the newest)."""
        return self.every is not None and step % self.every == 0


class TrainConfig(Frozen):
    """How a model is trained (see :func:`iclab.train.loop.train`).

    Parameters
    ----------
    steps : int, default 2000
        Optimizer steps; at most 10^8 (as are ``warmup``, ``eval_every``, ``ckpt_every``).
    batch_size : int, default 32
        Sequences per step; at most 65,536.
    lr : float, default 1e-3
        Peak learning rate, reached after ``warmup`` steps, then cosine to ``lr * min_lr_ratio``.
    warmup : int, default 100
    min_lr_ratio : float, default 0.1
    decay_steps : int or None, default None
        The cosine decay spans only the last ``decay_steps`` steps, the lr staying at its peak
        before them (warm-up, stable, decay); None decays from the end of the warm-up.
    weight_decay : float, default 0.01
        AdamW decay, applied to matrices only (not norms, biases); at most 10.
    betas : tuple of float, default (0.9, 0.999)
        Each in [0, 1).
    grad_clip : float, default 1.0
        Max global gradient norm; 0 turns clipping off; at most 10^6.
    eval_every : int, default 100
        Probes run at step 0 and every ``eval_every`` steps, and at the end.
    probe_at : list of int, default []
        More steps at which probes run (e.g. a log-spaced list to resolve a fast transition);
        at most 10,000 of them.
    ckpt_every : int, default 500
        Steps between checkpoints (one is also written at the end).
    keep_checkpoints : KeepCheckpoints or int, default {last: 2}
        The newest ``last`` checkpoints, and with ``every: k`` one every k steps and step 0
        (see :class:`KeepCheckpoints`; ``iclab probe`` runs a probe over them).
    log_every : int or None, default None
        Steps between rows of the training curves (loss, lr, gradient norm, tokens per
        second; probe ``log``); None is ``steps // 100``, so a run has at least 100 points.
    device : {"auto", "cpu", "cuda"}, default "auto"
    precision : {"auto", "fp32", "bf16"}, default "auto"
        "auto" is bf16 autocast on a GPU and fp32 on the CPU, where bf16 is many times slower.
    compile : bool or "auto", default "auto"
        ``torch.compile`` the training loss (:mod:`iclab.train.compiled`): on the CPU a step of
        the studies' cpu models then takes 0.67-0.80x the CPU time, after 5-30 s of compiling,
        and the numbers differ from eager ones by rounding. "auto" compiles on a GPU and trains
        eager on the CPU (the presets' documented numbers were measured eager); where compiling
        fails, "auto" trains eager and says so in one line, True raises.
    data_workers : int or "auto", default "auto"
        Processes that draw training batches ahead of the step that trains on them
        (:mod:`iclab.train.prefetch`); at most 64. The batch of a step is a function of the
        data seed and the step, so the numbers never depend on this: only how fast batches
        arrive. 0 draws the next batch only, in a thread of the training process. n >= 1 starts
        n processes (spawned, in about a second) that keep up to 2n batches ready, for a GPU
        that trains a batch faster than one core samples it. "auto" is 0 on the CPU, whose
        cores are training: more processes there only take cores from the step. On a GPU it is half this machine's cores (shared by the processes of a
        ``torchrun`` job on it, ``LOCAL_WORLD_SIZE``), at least 1 and at most 8: the other half
        stays with the training process (its Python, CUDA launches, pinning) and whatever else
        runs, and 8 bounds what a default takes (each worker is a Python process of about
        80 MB with its own copy of the world); set a number to use more. A script that trains
        with workers through the Python API needs the ``if __name__ == "__main__":`` guard of
        spawned processes.
    """

    steps: int = Field(2000, ge=1, le=MAX_STEPS)
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    lr: float = Field(1e-3, gt=0, le=1)
    warmup: int = Field(100, ge=0, le=MAX_STEPS)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    decay_steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    weight_decay: float = Field(0.01, ge=0, le=10)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    grad_clip: float = Field(1.0, ge=0, le=1e6)
    eval_every: int = Field(100, ge=1, le=MAX_STEPS)
    probe_at: list[Annotated[int, Field(ge=1, le=MAX_STEPS)]] = Field(default_factory=list, max_length=MAX_LIST)
    ckpt_every: int = Field(500, ge=1, le=MAX_STEPS)
    keep_checkpoints: KeepCheckpoints = KeepCheckpoints()
    log_every: int | None = Field(None, ge=1, le=MAX_STEPS)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool | Literal["auto"] = "auto"
    data_workers: int | Literal["auto"] = "auto"  # bounds in _workers: one message for both kinds

    @field_validator("data_workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        # one message naming what is allowed, not one per branch of the union
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                               and 0 <= value <= MAX_DATA_WORKERS):
            return value
        raise ValueError(f"allowed: 'auto' or a number of worker processes from 0 to {MAX_DATA_WORKERS}")

    @field_validator("compile", mode="before")
    @classmethod
    def _compile(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError("allowed: true, false or 'auto'")


class LogConfig(Frozen):
    """Where the training curves go besides the run's own rows (which always hold them).

    Parameters
    ----------
    tensorboard : bool, default False
        Event files under ``<run>/tensorboard/<model>``; watch with ``tensorboard --logdir runs``.
        Needs ``pip install 'iclab[tensorboard]'``.
    wandb : str or None, default None
        A Weights & Biases project. Offline (files under ``<run>/wandb``, ``wandb sync`` to upload)
        unless ``WANDB_MODE`` says otherwise. Needs ``pip install 'iclab[wandb]'``.
    """

    tensorboard: bool = False
    wandb: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _installed(self):
        import importlib.util

        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise ValueError("log.tensorboard = true needs the tensorboard package: pip install 'iclab[tensorboard]'")
        if self.wandb and importlib.util.find_spec("wandb") is None:
            raise ValueError(f"log.wandb = {self.wandb!r} needs the wandb package: pip install 'iclab[wandb]'")
        return self


def configs_dir() -> Path:
    """Where presets live: ``$ICLAB_CONFIGS``, else the package's own ``iclab/configs/``
    (package data, so an installed iclab has its presets too)."""
    env = os.environ.get("ICLAB_CONFIGS")
    if env:
        return Path(env)
    return Path(str(resources.files("iclab") / "configs"))


def preset_names(study: str) -> list[str]:
    d = configs_dir() / study
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def preset_path(study: str, preset: str) -> Path:
    """The YAML file of ``preset``: a name under ``<configs_dir()>/<study>/`` or a path to a file."""
    if preset.endswith((".yaml", ".yml")):
        p = Path(preset)
        if not p.is_file():
            raise ConfigError(f"preset file {preset!r} does not exist")
        return p
    p = configs_dir() / study / f"{preset}.yaml"
    if not p.is_file():
        raise UnknownNameError(f"preset of {study}", preset, preset_names(study))
    return p


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.steps=500", "world.vocab=32"]`` → ``{"train.steps": 500, "world.vocab": 32}``.

    Values are read as YAML scalars (``500`` an int, ``1e-3`` a float, ``[1, 2]`` a list,
    ``null`` None), anything else as a string.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_like_float(value):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
        out[key.strip()] = value
    return out


def _looks_like_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key set (creating sections as needed)."""
    import copy

    data = copy.deepcopy(data)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override {key}={value!r}: {'.'.join(parts[:i + 1])} is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the config section at ``loc`` (for 'allowed keys' messages)."""
    node: Any = cls
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(node, "model_fields", None)
        if fields is None or part not in fields:
            return None
        ann = fields[part].annotation
        node = next((a for a in getattr(ann, "__args__", (ann,)) if hasattr(a, "model_fields")), ann)
    return list(getattr(node, "model_fields", {})) or None


def describe_validation_error(err: ValidationError, cls: type[BaseModel], source: str) -> str:
    """One line per problem: the key, the value, what is allowed."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = _fields_at(cls, loc[:-1])
            lines.append(f"unknown key {key!r}" + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            value = e.get("input")
            if not loc:
                lines.append(msg)
            elif isinstance(value, dict):  # a section's own rule: its contents would bury the message
                lines.append(f"{key}: {msg}")
            else:
                lines.append(f"{key} = {value!r}: {msg}")
    return f"invalid config ({source}): " + "; ".join(lines)


def validate(cls: type[C], data: dict[str, Any], source: str = "config") -> C:
    """Build ``cls`` from ``data``, turning pydantic's errors into one ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, cls, source)) from None


def load_config(cls: type[C], study: str, preset: str, overrides: dict[str, Any] | None = None) -> C:
    """The validated config of ``study`` from ``preset`` with ``overrides`` applied."""
    path = preset_path(study, preset)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"preset {path} is not valid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"preset {path} cannot be read: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {path} holds a {type(data).__name__}; a preset is a mapping of config keys "
                          "(seed: 0, train: {steps: 500}, ...)")
    data = apply_overrides(data, overrides or {})
    return validate(cls, data, f"{study} preset {preset!r}" + (" with overrides" if overrides else ""))


def to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML, as saved with a run."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
