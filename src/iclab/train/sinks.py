"""Training curves sent outside the run: TensorBoard event files and Weights & Biases (offline).

The run's rows always hold the curves (probe ``log``); these sinks are for researchers who
watch training in those tools. Each is imported only when asked for (:class:`iclab.config.LogConfig`).
"""

from __future__ import annotations

import os
from pathlib import Path

from iclab.config import LogConfig


class Sinks:
    """Scalars of one training run to the sinks ``log`` asks for.

    Parameters
    ----------
    log : LogConfig or None
    run_dir : Path or None
        The run directory; TensorBoard writes ``tensorboard/<label>``, W&B ``wandb/``.
    label : str
        The model's name (one TensorBoard directory and one W&B run per model).
    """

    def __init__(self, log: LogConfig | None, run_dir: Path | None, label: str):
        self.writers = []
        if log is None or run_dir is None:
            return
        if log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writers.append(_TensorBoard(SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard" / label))))
        if log.wandb:
            import wandb

            (Path(run_dir) / "wandb").mkdir(parents=True, exist_ok=True)
            run = wandb.init(project=log.wandb, name=f"{Path(run_dir).name}-{label}", dir=str(run_dir),
                             mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new")
            self.writers.append(_WandB(run))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for w in self.writers:
            w.scalars(step, values)

    def close(self) -> None:
        for w in self.writers:
            w.close()


class _TensorBoard:
    def __init__(self, writer):
        self.writer = writer

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, run):
        self.run = run

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log({f"train/{k}": v for k, v in values.items()}, step=step)

    def close(self) -> None:
        self.run.finish()
