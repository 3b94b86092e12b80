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


def run_local(paths: list[str], on_done: OnDone, workers: int = 1, retries: int = 0) -> None:
    """Run the trials at ``paths``; call ``on_done(outcome)`` after every attempt.

    ``outcome`` is :func:`run_trial`'s dict plus ``attempt`` (1, 2, ...) and ``final`` (False
    when the trial failed and is tried again: at most ``retries`` more times)."""
    def finish(outcome: dict[str, Any], attempt: int) -> bool:
        final = outcome["status"] == "done" or attempt > retries
        on_done({**outcome, "attempt": attempt, "final": final})
        return final

    if workers <= 1:
        for p in paths:
            attempt = 1
            while not finish(run_trial(p), attempt):
                attempt += 1
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_trial, p): (p, 1) for p in paths}
        while futures:
            f = next(as_completed(futures))
            path, attempt = futures.pop(f)
            if not finish(f.result(), attempt):
                futures[pool.submit(run_trial, path)] = (path, attempt + 1)
