"""The local executor: trials one after another in this process, or in a process pool.

With ``workers=1`` (the default) each trial runs in this process, so a study's own
progress bar shows and a debugger stops where a trial fails. With ``workers > 1`` trials
run in that many fresh ("spawn") processes; each imports iclab anew, so only registered
studies run there, and a script that calls ``run_sweep(..., workers=2)`` must do so
under ``if __name__ == "__main__":`` (spawned processes import the main module). Mind the
cores: each worker's PyTorch uses ``OMP_NUM_THREADS`` threads.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from iclab.sweep.trials import run_trial

OnDone = Callable[[dict[str, Any]], None]


def run_local(paths: list[str], on_done: OnDone, workers: int = 1) -> None:
    """Run the trials at ``paths``; call ``on_done(outcome)`` as each one ends (see :func:`run_trial`)."""
    if workers <= 1:
        for p in paths:
            on_done(run_trial(p))
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_trial, p) for p in paths]
        for f in as_completed(futures):
            on_done(f.result())
