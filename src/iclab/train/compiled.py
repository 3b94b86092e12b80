"""``train.compile``: the training loss through ``torch.compile``, or not.

Compiling the whole loss (forward and cross-entropy, or a vector model's squared error) fuses
the elementwise work around the matmuls (norms, rotary, softmax, the loss), which on the CPU
is a large share of a small model's step: measured on the studies' cpu models, a compiled
step takes 0.7-0.8x the CPU time of an eager one after 5-30 s of compiling
(``benchmarks/README.md``, "Trainer"). The numbers differ from eager ones by float rounding
only (about 1e-6 in the loss of a step); the same seed on the same machine gives the same
numbers, and a resumed run those of the run it continues (one static graph per batch shape).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# A run this long repays compiling (5-30 s) by a margin on the cpu models (2-30 ms a step saved)
AUTO_MIN_STEPS = 1000

# Shapes a run may compile for: a curriculum's batch shapes, and the last batch of a resumed run
RECOMPILE_LIMIT = 64

Loss = Callable[[dict], torch.Tensor]


def wants_compile(setting: bool | str, steps: int) -> bool:
    """Whether ``train.compile = setting`` compiles a run of ``steps`` steps: True and False say
    so; "auto" compiles a run of at least :data:`AUTO_MIN_STEPS` steps."""
    if setting == "auto":
        return steps >= AUTO_MIN_STEPS
    return bool(setting)


def compiled_loss(loss: Loss, setting: bool | str, steps: int, say: Callable[[str], None]) -> Loss:
    """``loss`` compiled as ``train.compile = setting`` asks for a run of ``steps`` steps.

    With "auto", a compilation that fails (no C++ compiler, an operation the compiler does not
    take) falls back to the eager loss for the rest of the run, saying so once through ``say``;
    an error the eager loss raises too is the model's, and is raised. With True, a failure to
    compile is raised."""
    if not wants_compile(setting, steps):
        return loss
    say(f"train.compile = {str(setting).lower()}: the first step compiles the training loss (5-30 s on a CPU)")
    # One static graph per batch shape, never a dynamic one: a dynamic graph would be made at the
    # first change of shape (a curriculum step), so a run resumed past it would compute with
    # other kernels than the run it continues, and its numbers would drift from it by rounding.
    # Every shape of a curriculum gets its graph (Garg et al.'s has 16), not eager past the 8th.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, RECOMPILE_LIMIT)
    compiled = torch.compile(loss, dynamic=False)
    if setting is True:
        return compiled
    state = {"fn": None}  # None until the first call has told compiled from eager

    def first_call_decides(batch: dict) -> torch.Tensor:
        if state["fn"] is not None:
            return state["fn"](batch)
        try:
            out = compiled(batch)
            state["fn"] = compiled
        except Exception as e:  # noqa: BLE001 - any compiler failure; the eager call below tells ours from the model's
            out = loss(batch)  # raises if the model itself is at fault
            state["fn"] = loss
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            say(f"train.compile = auto: compiling the loss failed ({type(e).__name__}: {reason[:200]}); "
                "training eager")
        return out

    return first_call_decides
