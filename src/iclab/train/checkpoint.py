"""Checkpoints in safetensors: weights, optimizer, RNG and the trainer's own state.

A checkpoint is a directory ``step-00000500/`` holding ``model.safetensors``,
``optimizer.safetensors`` (tensors of the optimizer state and the torch RNG state) and
``trainer.json`` (step, optimizer hyper-parameters, loss history, probe rows, and a
SHA-256 of each tensor file). It is written under a temporary name and renamed into
place, so a kill at any moment leaves either the whole checkpoint or none of it.
Nothing is unpickled when loading.

A training keeps its newest checkpoints (two by default; ``train.keep_checkpoints``), and with
``every`` also one every that many steps, a history that :mod:`iclab.studies.history` runs
probes over. A checkpoint is deleted only once a newer one is written and its checksums
verified. A checkpoint damaged later (a truncated
file, a disk error) is passed over by :func:`latest_checkpoint` with a one-line
:class:`~iclab.errors.IclabWarning`, and training resumes from the previous one; the data
stream and the RNG state come from the checkpoint, so the result is the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from iclab.errors import IclabWarning, ModelLoadError

_STEP_PREFIX = "step-"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, val in state.items():
            if isinstance(val, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        if name.startswith("state."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = t
    for name, val in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = val
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(ckpt_root: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer,
                    trainer_state: dict, keep: int = 2, every: int | None = None) -> Path:
    """Write the checkpoint of ``step`` atomically and verify it; then keep the newest ``keep``
    of them (at least 2: the previous one stays until this one is known to be whole) and those
    of steps that are multiples of ``every``."""
    assert keep >= 2, "the previous checkpoint is what a damaged newest one falls back to"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"{_STEP_PREFIX}{step:08d}"
    for stale in ckpt_root.glob(".tmp-*"):  # left by a kill while writing; one trainer writes here
        shutil.rmtree(stale, ignore_errors=True)
    tmp = ckpt_root / f".tmp-{final.name}"
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        opt_tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    meta = {"step": step, "optimizer": opt_meta, "trainer": trainer_state,
            "sha256": {f: _sha256(tmp / f) for f in ("model.safetensors", "optimizer.safetensors")}}
    (tmp / "trainer.json").write_text(json.dumps(meta))  # written last: its presence marks a whole checkpoint
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    problem = checkpoint_problem(final)
    if problem is not None:
        shutil.rmtree(final, ignore_errors=True)
        raise ModelLoadError(f"checkpoint {final} did not verify after writing ({problem}); the previous one is kept")
    for old in sorted(ckpt_root.glob(f"{_STEP_PREFIX}*"))[:-keep]:
        if every is None or step_of(old) % every:
            shutil.rmtree(old, ignore_errors=True)
    return final


def step_of(path: Path) -> int:
    """The step of a checkpoint directory ``step-00000500``."""
    return int(path.name.removeprefix(_STEP_PREFIX))


def checkpoints(ckpt_root: Path) -> list[Path]:
    """The whole checkpoints under ``ckpt_root`` (those with a ``trainer.json``), oldest first."""
    if not ckpt_root.is_dir():
        return []
    return [p for p in sorted(ckpt_root.glob(f"{_STEP_PREFIX}*")) if (p / "trainer.json").is_file()]


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with the checkpoint at ``path`` (a missing or unreadable ``trainer.json``,
    a tensor file whose SHA-256 differs from the recorded one), or None when it is whole."""
    try:
        meta = json.loads((path / "trainer.json").read_text())
        digests = dict(meta["sha256"])
        if not {"step", "trainer", "optimizer"} <= set(meta):
            return "trainer.json lacks the step, trainer or optimizer state"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"trainer.json is missing or corrupt: {type(e).__name__}"
    for fname, digest in digests.items():
        f = path / fname
        if not f.is_file():
            return f"{fname} is missing"
        if _sha256(f) != digest:
            return f"{fname} does not match its checksum"
    return None


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    """The newest whole checkpoint directory under ``ckpt_root``, or None.

    A newer checkpoint that is damaged is passed over with an :class:`~iclab.errors.IclabWarning`
    (one line naming it and the one resumed from instead).
    """
    if not ckpt_root.is_dir():
        return None
    done = [p for p in sorted(ckpt_root.glob(f"{_STEP_PREFIX}*")) if (p / "trainer.json").is_file()]
    damaged = []
    for path in reversed(done):
        problem = checkpoint_problem(path)
        if problem is None:
            for bad, why in damaged:
                warnings.warn(IclabWarning(f"checkpoint {bad} is damaged ({why}); resuming from {path.name}"),
                              stacklevel=2)
            return path
        damaged.append((path, problem))
    for bad, why in damaged:
        warnings.warn(IclabWarning(f"checkpoint {bad} is damaged ({why}) and no earlier one is whole; "
                                   "training starts over"), stacklevel=2)
    return None


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer | None = None) -> dict:
    """Restore ``model`` (and ``opt`` and the torch RNG) from ``path``; returns ``trainer.json``.

    Raises ModelLoadError naming the file when the checkpoint is incomplete or corrupt.
    """
    meta_path = path / "trainer.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"checkpoint {path}: trainer.json is missing or corrupt ({e})") from None
    for fname, digest in meta.get("sha256", {}).items():
        f = path / fname
        if not f.is_file() or _sha256(f) != digest:
            raise ModelLoadError(f"checkpoint file {f} is missing or corrupt (checksum mismatch)")
    try:
        weights = load_file(path / "model.safetensors")
        opt_tensors = load_file(path / "optimizer.safetensors")
    except Exception as e:  # safetensors raises its own error types on bad headers
        raise ModelLoadError(f"checkpoint {path} could not be read: {e}") from None
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ModelLoadError(f"checkpoint {path} does not fit this model: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
    if opt is not None:
        opt.load_state_dict(_unflatten_optimizer(opt_tensors, meta["optimizer"]))
        torch.set_rng_state(opt_tensors["rng.torch"])
        if "rng.cuda" in opt_tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(opt_tensors["rng.cuda"])
    return meta
