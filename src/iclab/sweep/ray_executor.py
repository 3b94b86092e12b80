"""The Ray executor: one Ray task per trial, on a local or remote Ray cluster.

Ray is an optional extra (``pip install 'iclab[ray]'``). The sweep directory must be on
a file system that every Ray worker sees at the same path (each task writes its trial's
run directory there), and iclab must be installed on the workers.
"""

from __future__ import annotations

import importlib.util

from iclab.errors import IclabError
from iclab.sweep.local import OnDone
from iclab.sweep.trials import run_trial


def check_ray() -> None:
    """Raise a one-line error when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise IclabError("executor 'ray' needs Ray, which is not installed; install the optional extra with "
                         "pip install 'iclab[ray]', or use --executor local")


def run_ray(paths: list[str], on_done: OnDone, address: str | None = None, cpus_per_trial: float = 1.0,
            gpus_per_trial: float = 0.0) -> None:
    """Run the trials at ``paths`` as Ray tasks; ``address`` None starts or joins a local Ray."""
    check_ray()
    import ray

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(run_trial)
    pending = [task.remote(p) for p in paths]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        on_done(ray.get(done[0]))
