"""The training loop: one function, readable top to bottom.

Each step: fetch the step's batch (drawn ahead while earlier steps compute, by a thread or by
``train.data_workers`` processes, :mod:`iclab.train.prefetch`; in pinned memory for a GPU),
forward under autocast, loss, backward, clip, AdamW step at the scheduled learning rate. The
training curves (loss, lr, gradient norm, throughput) are rows every ``log_every`` steps;
probes run at step 0, every ``eval_every`` steps and at the end, so every metric is also a
curve over training. Checkpoints hold everything a resume needs (weights,
optimizer, RNG, losses, probe rows); the data stream needs no state because the batch of
step ``s`` is drawn from ``default_rng([data_seed, s])``. A run killed at any point and
resumed therefore ends with the same numbers as one that never stopped.

Under ``torchrun`` the same function trains one model over several processes: each takes
its slice of the step's batch, gradients are averaged, and rank 0 alone probes and writes
checkpoints. That plumbing is :mod:`iclab.train.distributed`; in one process it does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from iclab.config import LogConfig, TrainConfig
from iclab.rows import Row, Rows
from iclab.progress import TrainingProgress
from iclab.train import distributed
from iclab.train.batches import host_tensors, to_device, tokens_in
from iclab.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from iclab.train.compiled import compiled_loss
from iclab.train.prefetch import Prefetcher, data_workers
from iclab.train.schedule import get_lr
from iclab.train.sinks import Sinks

ProbeFn = Callable[[nn.Module, int], list[Row]]


@dataclass
class TrainResult:
    """What a training run leaves: the step it ended at, probe rows (including the training
    loss) and the loss of every step."""

    step: int = 0
    rows: Rows = field(default_factory=Rows)
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)  # one per step; NaN where none was computed


_said_cpu = False


def pick_device(name: str, index: int = 0) -> torch.device:
    """The device of ``train.device`` (GPU ``index`` of this machine for "cuda"). "auto" without
    a GPU falls back to the CPU, saying so once per process in one line."""
    global _said_cpu
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", index)
        if not _said_cpu:
            _say("train.device = auto: no GPU found, training on the CPU")
            _said_cpu = True
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from iclab.errors import ConfigError
        raise ConfigError("train.device = 'cuda' but no GPU is available; allowed here: auto, cpu")
    return torch.device("cuda", index) if name == "cuda" else torch.device(name)


def _say(line: str) -> None:
    """One line on standard error, from rank 0 only."""
    from iclab.progress import console
    if distributed.ranks().main:
        console.print(line, highlight=False)


def make_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains and biases are not decayed); ``fused``
    (one kernel for all parameters) is for CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)


def use_fused(opt: torch.optim.AdamW, fused: bool) -> None:
    """Make a loaded optimizer fused (CUDA) or not: its flag, and the step counts, which fused
    AdamW keeps on the parameters' device and the other kind on the CPU."""
    for group in opt.param_groups:
        group["fused"] = fused or None
        for p in group["params"]:
            state = opt.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(p.device if fused else "cpu")


def train(model: nn.Module, world, cfg: TrainConfig, *, data_seed: int, ckpt_dir: Path | None = None,
          probe: ProbeFn | None = None, label: str = "model", describe: Callable[[Rows], str] | None = None,
          log: LogConfig | None = None, run_dir: Path | None = None) -> TrainResult:
    """Train ``model`` on batches from ``world``; resume from ``ckpt_dir`` if it holds a checkpoint.

    Parameters
    ----------
    model : nn.Module
        An HF causal LM (or a vector-world wrapper with ``loss``); trained in place.
    world : World
        Source of batches; ``world.sample(rng, batch_size)`` per step.
    cfg : TrainConfig
    data_seed : int
        Seed of the data stream (batch ``s`` comes from ``default_rng([data_seed, s])``).
    ckpt_dir : Path, optional
        Where checkpoints go; None trains without checkpoints.
    probe : callable(model, step) -> list of Row, optional
        Measurements to take at step 0, every ``cfg.eval_every`` steps and at the end.
        The model is in eval mode while it runs.
    label : str
        Shown on the progress bar and set as ``model`` on the loss rows.
    describe : callable(rows) -> str, optional
        What the probe rows of a step found, in a few words, shown as "step s: <words>".
    log, run_dir : LogConfig and Path, optional
        Also send the training curves to TensorBoard / W&B, under ``run_dir``.

    Every ``cfg.log_every`` steps (default ``steps // 100``) the curves are added as rows:
    ``log``/``loss`` (mean over the interval), ``log``/``lr``, ``log``/``grad_norm`` (mean
    global norm before clipping) and ``speed``/``tokens_per_s`` (training only; a property of
    the machine, so it differs between runs that are otherwise identical).
    """
    ranks = distributed.init()  # one process: rank 0 of 1, and nothing below is distributed
    device = pick_device(cfg.device, ranks.local)
    model.to(device)
    opt = make_optimizer(model, cfg, fused=device.type == "cuda")
    use_bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16")
    # the whole loss is compiled, not the model: a vector model's loss is not its forward
    compute_loss = compiled_loss(distributed.loss_function(model, ranks, device), cfg.compile, device, _say)
    pin = device.type == "cuda"
    log_every = cfg.log_every or max(1, cfg.steps // 100)
    result, start = TrainResult(), 0

    def prepare(batch) -> tuple[dict[str, torch.Tensor], int]:
        """This process's share of a step's batch as CPU tensors, and the tokens in the whole batch."""
        tensors = ranks.shard(host_tensors(batch))
        return ({k: v.pin_memory() for k, v in tensors.items()} if pin else tensors), tokens_in(batch)

    ckpt = latest_checkpoint(ckpt_dir) if ckpt_dir else None
    if ckpt is not None:
        meta = load_checkpoint(ckpt, model, opt)
        use_fused(opt, device.type == "cuda")  # the checkpoint may come from another device
        start = meta["step"]
        trainer = meta["trainer"]
        result = TrainResult(start, Rows(Row(**r) for r in trainer["rows"]), trainer["losses"],
                             [float("nan") if v is None else v for v in trainer.get("grad_norms", [])])
        if start >= cfg.steps:
            model.eval()
            return result

    keep = cfg.keep_checkpoints

    def checkpoint(step: int) -> None:
        if ckpt_dir is not None and ranks.main:
            state = {"rows": [asdict(r) for r in result.rows], "losses": result.losses, "label": label,
                     "grad_norms": [None if v != v else v for v in result.grad_norms]}  # JSON has no NaN
            save_checkpoint(ckpt_dir, step, model, opt, state, keep=keep.last, every=keep.every)

    tokens = 0  # trained on since the last log row or probe (a curriculum changes a batch's size)
    probe_at = set(cfg.probe_at)
    last_probe = max([0, *(r.step for r in result.rows if r.probe == "train")])
    pending_losses: list[torch.Tensor] = []
    pending_norms: list[torch.Tensor] = []  # one per step, a NaN tensor on steps without a norm
    nan = torch.tensor(float("nan"), device=device)
    sinks = Sinks(log, run_dir, label)
    workers = data_workers(cfg.data_workers, device.type)
    with Prefetcher(world, data_seed, cfg.batch_size, range(start, cfg.steps), workers, prepare) as batches, \
            TrainingProgress(label, cfg.steps, start) as shown:

        def run_probe(step: int) -> None:
            if probe is None or not ranks.main:
                return
            model.eval()
            rows = Rows(probe(model, step))
            result.rows.extend(rows)
            if describe is not None and rows:
                shown.note(f"step {step}: {describe(rows)}")
            model.train()

        model.train()
        if start == 0:
            if keep.every is not None:
                checkpoint(0)  # the initial weights start the checkpoint history
            run_probe(0)
        t_last = time.perf_counter()
        for step in range(start, cfg.steps):
            batch, tokens_per_batch = batches.get(step)
            tokens += tokens_per_batch
            inputs = to_device(batch, device)

            lr = get_lr(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio, cfg.decay_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = compute_loss(inputs)
            loss.backward()
            done = step + 1
            if cfg.grad_clip > 0:  # the norm comes with clipping; without it, it is computed for the log only
                pending_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).detach())
            elif done % log_every == 0 or done == cfg.steps:
                pending_norms.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None]))
            else:
                pending_norms.append(nan)
            opt.step()
            opt.zero_grad(set_to_none=True)
            pending_losses.append(loss.detach())
            shown.step(done)

            is_log = done % log_every == 0 or done == cfg.steps
            is_probe = done % cfg.eval_every == 0 or done in probe_at or done == cfg.steps
            is_ckpt = done % cfg.ckpt_every == 0 or done == cfg.steps or keep.keeps(done)
            if is_log or is_probe or is_ckpt:
                # one device sync per interval, not per step
                # the global batch's loss: the mean of the processes' shares
                result.losses.extend(ranks.mean(torch.stack(pending_losses).float()).cpu().tolist())
                result.grad_norms.extend(torch.stack(pending_norms).float().cpu().tolist())
                pending_losses.clear()
                pending_norms.clear()
            if is_log:
                now = time.perf_counter()
                tok_s = tokens / max(now - t_last, 1e-9)
                since = (done - 1) // log_every * log_every  # the previous log step: the same after a resume
                curve = {"loss": _mean(result.losses[since:done]), "lr": lr,
                         "grad_norm": _mean(result.grad_norms[since:done])}
                result.rows += [Row("log", k, v, step=done, model=label) for k, v in curve.items()]
                result.rows.append(Row("speed", "tokens_per_s", tok_s, step=done, model=label))
                sinks.scalars(done, {**curve, "tokens_per_s": tok_s})
                shown.logged(done, curve["loss"], tok_s)
                t_last, tokens = time.perf_counter(), 0
            if is_probe:
                recent = result.losses[-min(cfg.eval_every, done - last_probe):]
                last_probe = done
                result.rows.append(Row("train", "loss", sum(recent) / len(recent), step=done, model=label))
                run_probe(done)
                t_last, tokens = time.perf_counter(), 0  # throughput counts training only
            result.step = done
            if is_ckpt:
                checkpoint(done)
    sinks.close()
    model.eval()
    return result


def _mean(values: list[float]) -> float:
    """The mean of the values that are not NaN (NaN if there are none)."""
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")
