"""One progress bar style for long work (training, sweeps, probes over many prompts)."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def progress_bar(transient: bool = False) -> Progress:
    """A rich Progress with a description, a bar, n/total, elapsed and remaining time and a
    free ``info`` field (loss, throughput). ``ICLAB_NO_PROGRESS=1`` silences it."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=transient,
                    disable=os.environ.get("ICLAB_NO_PROGRESS") == "1")
