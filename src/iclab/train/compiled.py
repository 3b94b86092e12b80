"""``train.compile``: the training loss through ``torch.compile``, or not.

Compiling the whole loss (forward and cross-entropy, or a vector model's squared error) fuses
the elementwise work around the matmuls (norms, rotary, softmax, the loss), which on the CPU
is a large share of a small model's step: measured on the studies' cpu models, a compiled
step takes 0.67-0.80x the CPU time of an eager one, after 5-30 s of compiling
(``benchmarks/README.md``, "Trainer"). The numbers differ from eager ones by float rounding
only (about 1e-6 in the loss of a step); the same seed on the same machine gives the same
numbers, and a resumed run those of the run it continues (one static graph per batch shape).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Shapes a run may compile for: a curriculum's batch shapes, and the last batch of a resumed run
RECOMPILE_LIMIT = 64

Loss = Callable[[dict], torch.Tensor]


def wants_compile(setting: bool | str, device: torch.device) -> bool:
    """Whether ``train.compile = setting`` compiles on ``device``: True and False say so; "auto"
    compiles on a GPU, the usual fast path there, and not on the CPU, where it would change (by
    rounding) the numbers every preset's documentation quotes, all measured eager."""
    if setting == "auto":
        return device.type == "cuda"
    return bool(setting)


def compiled_loss(loss: Loss, setting: bool | str, device: torch.device, say: Callable[[str], None]) -> Loss:
    """``loss`` compiled as ``train.compile = setting`` asks for training on ``device``.

    With "auto", a compilation that fails (no C++ compiler, an operation the compiler does not
    take) falls back to the eager loss for the rest of the run, saying so once through ``say``;
    an error the eager loss raises too is the model's, and is raised. With True, a failure to
    compile is raised."""
    if not wants_compile(setting, device):
        return loss
    say(f"train.compile = {str(setting).lower()}: the first step (and each new batch shape) compiles the training loss")
    # One static graph per batch shape, never a dynamic one: a dynamic graph would be made at the
    # first change of shape (a curriculum step), so a run resumed past it, compiling static
    # first, could compute with other kernels than the run it continues (not seen on the tiny
    # model of the resume test, but nothing promises the same kernels; static graphs are the same).
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
