"""Worlds that fail at a chosen step, for the data workers' tests. In a module of their own so
that a spawned worker, which imports the module to unpickle the world, imports only this and
the worlds (no torch, no pytest)."""

from __future__ import annotations

import os

from iclab.worlds import RepeatedTokens


class FailingTokens(RepeatedTokens):
    """RepeatedTokens whose batch of step ``fail_at`` raises, or with ``die`` ends its process."""

    fail_at: int = 3
    die: bool = False
    step: int = -1

    def at_step(self, step: int) -> FailingTokens:
        return self.model_copy(update={"step": step})

    def sample(self, rng, batch_size):
        if self.step == self.fail_at:
            if self.die:
                os._exit(3)  # as a segfault or the OOM killer would: no exception, no clean-up
            raise ValueError(f"no batch at step {self.step}")
        return super().sample(rng, batch_size)
