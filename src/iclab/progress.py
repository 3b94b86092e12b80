"""Progress of long work, for a person watching a terminal or reading a log file.

On a terminal: a bar per training run (step/total, loss, tokens per second, elapsed and
remaining time), redrawn as steps complete, with one line above it each time the probes
run ("step 1800: best induction score 0.71 (L1H2)"). When the output is a file (a batch
job, ``nohup``): a plain line every ``log_every`` steps at most every 30 seconds, and the
probe lines. ``ICLAB_NO_PROGRESS=1`` (``--quiet``) silences both.
"""

from __future__ import annotations

import os
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def quiet() -> bool:
    return os.environ.get("ICLAB_NO_PROGRESS") == "1"


def progress_bar(transient: bool = False, out: Console | None = None, line_interval: float = 30.0) -> Progress:
    """A rich Progress with a description, a bar, n/total, elapsed and remaining time and a
    free ``info`` field (loss, throughput); disabled when quiet. When the output is not a
    terminal (a log file), where rich draws nothing until the end, each task's progress is a
    plain line instead, at most every ``line_interval`` seconds and when it completes."""
    out = out or console
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    if out.is_terminal or quiet():
        return Progress(*columns, console=out, transient=transient, disable=quiet())
    return _PlainLines(*columns, console=out, disable=True, line_interval=line_interval)


class _PlainLines(Progress):
    """A Progress that draws nothing and prints one line per update, at most every
    ``line_interval`` seconds a task, and its last one."""

    def __init__(self, *columns, line_interval: float, **kwargs):
        super().__init__(*columns, **kwargs)
        self._out, self._line_interval, self._lined = kwargs["console"], line_interval, {}

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        task = self._tasks[task_id]
        now = time.perf_counter()
        done = task.total is not None and task.completed >= task.total
        if now - self._lined.get(task_id, task.start_time or now) < self._line_interval and not done:
            return
        self._lined[task_id] = now
        total = f"/{task.total:.0f}" if task.total is not None else ""
        info = task.fields.get("info", "")
        elapsed = task.elapsed or 0.0
        eta = task.time_remaining
        self._out.print(f"{task.description}: {task.completed:.0f}{total}" + (f", {info}" if info else "")
                        + f", elapsed {_clock(elapsed)}, remaining {_clock(float('nan') if eta is None else eta)}",
                        highlight=False, soft_wrap=True)


class TrainingProgress:
    """What a training run shows while it runs; see the module docstring.

    Parameters
    ----------
    label : str
        The model's name, shown first.
    total, start : int
        Steps of the run, and the step it starts (or resumes) at.
    out : Console, optional
        Where to write (default: standard error).
    min_interval : float, default 0.2
        Seconds between redraws of the bar on a terminal.
    line_interval : float, default 30
        Seconds between plain lines when the output is not a terminal.
    """

    def __init__(self, label: str, total: int, start: int = 0, out: Console | None = None,
                 min_interval: float = 0.2, line_interval: float = 30.0):
        self.out = out or console
        self.label, self.total, self.start = label, total, start
        self.min_interval, self.line_interval = min_interval, line_interval
        self.silent = quiet()
        self.terminal = self.out.is_terminal and not self.silent
        self.t0 = self._drawn = self._lined = time.perf_counter()
        self.info = ""
        self.bar = None
        if self.terminal:
            self.bar = progress_bar(out=self.out)
            self.bar.live.auto_refresh = False  # redrawn by step(), so the bar moves with training
            self.task = self.bar.add_task(label, total=total, completed=start, info="")

    def __enter__(self) -> "TrainingProgress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.update(self.task, info=self.info)
            self.bar.refresh()
            self.bar.stop()

    def step(self, done: int) -> None:
        """Called after every optimizer step (no device sync)."""
        if self.bar is None:
            return
        self.bar.update(self.task, completed=done)
        now = time.perf_counter()
        if now - self._drawn >= self.min_interval or done == self.total:
            self.bar.refresh()
            self._drawn = now

    def logged(self, done: int, loss: float, tokens_per_s: float) -> None:
        """Called when the loss of step ``done`` is known (every ``log_every`` steps)."""
        self.info = f"loss {loss:.3f}  {tokens_per_s:,.0f} tok/s"
        if self.bar is not None:
            self.bar.update(self.task, info=self.info)
            return
        now = time.perf_counter()
        if self.silent or (now - self._lined < self.line_interval and done != self.total):
            return
        self._lined = now
        elapsed = now - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        self.out.print(f"{self.label}: step {done}/{self.total} ({done / self.total:.0%}), {self.info}, "
                       f"elapsed {_clock(elapsed)}, remaining {_clock(eta)}", highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        """A one-line message (what the probes found at a step), above the bar."""
        if not self.silent:
            self.out.print(f"{self.label} {text}", highlight=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: not known yet
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
