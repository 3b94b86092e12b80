"""The data stream: the batch of each step, drawn ahead of the step that trains on it.

The batch of step ``s`` is a pure function of ``(data_seed, s)`` (:func:`batch_at`), so it can
be drawn at any time, in any process, and come out the same: drawing ahead changes when
batches arrive, never which. :class:`Prefetcher` hands them to the loop in step order
(``train.data_workers``):

- 0 workers: one thread of the training process draws the next batch while the current
  step computes. Enough on the CPU, where the step is the slow part.
- n workers: n processes, each sent the world once, draw the steps after the current one,
  up to 2n batches ahead, so a GPU whose step is shorter than a batch's sampling is still
  fed. Whatever finishes first, step ``s`` gets the batch of step ``s``.

The workers are spawned, not forked: forking a process that holds torch's threads can
deadlock. This module and the worlds import no torch, so a worker starts in under a second
(idle machine) and takes about 80 MB. A worker that raises or dies fails the run with
:class:`DataWorkerError` naming the step, and the pool is shut down however the run ends:
workers leave Ctrl-C to the training process, and exit when it is killed outright.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Self

import numpy as np

#: batches in flight ahead of the step being trained, per worker process
AHEAD_PER_WORKER = 2


def batch_at(world, data_seed: int, step: int, batch_size: int):
    """The batch of ``step``: a pure function of (seed, step), so the data stream's
    position after a resume is just the step number. A world with a curriculum
    (``at_step``) gives the world of that step."""
    if hasattr(world, "at_step"):
        world = world.at_step(step)
    return world.sample(np.random.default_rng([data_seed, step]), batch_size)


def data_workers(setting: int | str, device_type: str) -> int:
    """The number of worker processes ``train.data_workers`` asks for on ``device_type``
    ("auto": none on the CPU; on a GPU half the cores over this machine's ranks, 1 to 8;
    the reasons are in :class:`iclab.config.TrainConfig`)."""
    if setting != "auto":
        return int(setting)
    if device_type == "cpu":
        return 0
    per_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return min(8, max(1, (os.cpu_count() or 1) // (2 * per_node)))


class DataWorkerError(RuntimeError):
    """A batch that a worker process failed to draw: the world raised, or the worker died."""


class Prefetcher:
    """``prepare(batch_at(world, data_seed, s, batch_size))`` for each step ``s`` of ``steps``,
    drawn ahead by ``workers`` processes (0: by one thread, the next step only).

    Ask for the steps in order with :meth:`get`; use it as a context manager, which shuts
    the workers down on the way out (normal end, exception or interrupt). ``prepare`` runs
    in the training process (with workers, on the batch they send back).
    """

    def __init__(self, world, data_seed: int, batch_size: int, steps: range, workers: int = 0,
                 prepare: Callable[[Any], Any] = lambda batch: batch):
        self.world, self.data_seed, self.batch_size, self.steps = world, data_seed, batch_size, steps
        self.workers, self.prepare = workers, prepare
        self._pending: dict[int, Future] = {}
        self._asked = steps.start  # the step get will be asked for next
        self._next = steps.start  # the first step not yet given to the pool
        if workers == 0:
            self._pool: Executor = ThreadPoolExecutor(max_workers=1)
        else:
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(world,))
            try:
                with _sigint_ignored():  # the first submit starts the workers
                    self._fill()  # the workers start, and draw, while the loop probes step 0
            except BaseException:  # e.g. a world that cannot be pickled: no `with` yet to close the pool
                self.close()
                raise

    def get(self, step: int):
        """The prepared batch of ``step``: ``steps.start`` first, then each next step."""
        if step != self._asked:
            raise ValueError(f"Prefetcher.get({step}): the steps go in order; the next is {self._asked}")
        self._asked = step + 1
        if self.workers == 0:
            future = self._pending.pop(step) if step in self._pending else self._pool.submit(self._draw, step)
            batch = future.result()  # a world's error surfaces as it is, as it always has
            if step + 1 < self.steps.stop:  # draw the next batch while this one trains
                self._pending[step + 1] = self._pool.submit(self._draw, step + 1)
            return batch
        self._fill()  # keep the workers busy while this step's batch is waited for
        future = self._pending.pop(step, None)  # None: the pool broke before it could be given this step
        try:
            if future is None:
                raise BrokenProcessPool
            batch = future.result()
        except BrokenProcessPool as e:
            raise DataWorkerError(f"a data worker process died or failed to start before the batch of step {step} "
                                  f"was drawn (train.data_workers = {self.workers}; 0 draws batches in the "
                                  "training process)") from e
        except Exception as e:
            raise DataWorkerError(f"drawing the batch of step {step} failed in a data worker: "
                                  f"{type(e).__name__}: {e}") from e
        return self.prepare(batch)

    def _fill(self) -> None:
        """Give the pool the steps up to ``AHEAD_PER_WORKER * workers`` past the one being trained."""
        end = min(self.steps.stop, self._asked + AHEAD_PER_WORKER * self.workers)
        for step in range(self._next, end):
            try:
                self._pending[step] = self._pool.submit(_draw_in_worker, self.data_seed, step, self.batch_size)
            except BrokenProcessPool:
                return  # a worker died: get says so when the loop asks for a batch that is lost
            self._next = step + 1

    def _draw(self, step: int):
        return self.prepare(batch_at(self.world, self.data_seed, step, self.batch_size))

    def close(self) -> None:
        """Cancel the batches not begun and wait for the ones being drawn (a batch at most per worker)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes started inside ignore SIGINT from their first instruction on. Ctrl-C reaches
    the whole process group: the training process handles it and shuts the pool down, rather
    than every worker printing its own KeyboardInterrupt (also while it still imports)."""
    if threading.current_thread() is not threading.main_thread():  # only there can handlers change
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signal.SIGINT, previous)


_world = None  # a worker's copy of the world, sent once when it starts


def _start_worker(world) -> None:
    global _world
    _world = world
    # a training process killed outright (SIGKILL, out of memory) cannot shut the pool down,
    # and its workers would wait for work forever
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def _draw_in_worker(data_seed: int, step: int, batch_size: int):
    return batch_at(_world, data_seed, step, batch_size)
