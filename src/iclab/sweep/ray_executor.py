"""The Ray executor: one Ray task per trial, on a local or remote Ray cluster.

Ray is an optional extra (``pip install 'iclab[ray]'``). Each trial is one task that runs
:func:`iclab.sweep.trials.run_trial` on the trial's run directory, reserving
``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs of the cluster; Ray starts as many at
once as the cluster's resources allow. The sweep directory must be on a file system that
every Ray worker sees at the same path (each task writes its trial's run directory there,
the driver writes ``sweep.json``), and iclab must be installed on the workers.

Failures come in two kinds, and both are recorded with their error:

- the study raises: the task returns ``failed`` with the error (``run_trial`` records it in
  the trial's ``run.json`` too);
- the worker dies (killed, out of memory, its node lost): ``ray.get`` raises a Ray error; the
  driver records ``failed`` with "worker died: ..." in the trial's ``run.json``, since the
  worker could not.

A failed trial is submitted again, up to ``retries`` more times; it continues from its
last checkpoint, like ``iclab resume``. Retries are the executor's own (the tasks have
``max_retries=0``), so that every attempt's error is recorded, not only the last.

``address``: None starts a Ray on this machine (or joins the one ``RAY_ADDRESS`` names);
``"auto"`` joins the cluster already running here; ``"HOST:PORT"`` joins that cluster's head
(the GCS port of ``ray start --head --port``); ``"ray://HOST:PORT"`` connects through the
Ray client server of a remote cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import time
from typing import Any

from iclab.errors import IclabError
from iclab.sweep.local import OnDone
from iclab.sweep.trials import record_failure, run_trial


def check_ray() -> None:
    """Raise a one-line error when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise IclabError("executor 'ray' needs Ray, which is not installed; install the optional extra with "
                         "pip install 'iclab[ray]', or use --executor local")


def _ray_trial(path: str, study_entry=None) -> dict[str, Any]:
    """A Ray task: run the trial at ``path``. ``study_entry`` (a
    :class:`iclab.studies.StudyEntry`) registers a study the worker's iclab does not list
    (one registered in the driver's script); its module must be importable on the worker."""
    if study_entry is not None:
        from iclab.studies import STUDIES

        STUDIES.setdefault(study_entry.name, study_entry)
    return run_trial(path)


def gpus_for(devices: set[str], cluster_gpus: float) -> float:
    """GPUs a trial asks for when ``--gpus-per-trial`` is not given, from the trials' ``train.device``:
    1 when any says "cuda", 1 for "auto" on a cluster that has GPUs, else 0."""
    if "cuda" in devices:
        return 1.0
    return 1.0 if "auto" in devices and cluster_gpus > 0 else 0.0


@contextlib.contextmanager
def ray_session(address: str | None):
    """Connected to the Ray cluster at ``address`` while the block runs (see the module docstring);
    a cluster that cannot be reached is an IclabError in one line. A connection made earlier in
    this process (``ray.init`` by the caller) is used as it is and left open."""
    check_ray()
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"ICLAB_NO_PROGRESS": "1"}})
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise IclabError(f"--address {address!r}: cannot connect to a Ray cluster "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """A ``HOST:PORT`` or ``ray://HOST:PORT`` address with nothing listening is refused at once
    (Ray itself retries for minutes)."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise IclabError(f"--address {address!r}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise IclabError(f"--address {address!r}: cannot connect to a Ray cluster (nothing answers at "
                         f"{hostport}: {e.strerror or e})") from None


def run_ray(paths: list[str], on_done: OnDone, cpus_per_trial: float = 1.0,
            gpus_per_trial: float | None = None, retries: int = 0, study_entry=None,
            devices: set[str] | None = None) -> None:
    """Run the trials at ``paths`` as Ray tasks (inside :func:`ray_session`); call ``on_done(outcome)``
    after every attempt.

    ``outcome`` is ``run_trial``'s dict plus ``attempt`` (1, 2, ...) and ``final`` (False when
    the trial failed and will be tried again). ``gpus_per_trial`` None is :func:`gpus_for` the
    trials' ``devices``.
    """
    import ray

    attempts: dict[str, int] = {}
    pending: dict[Any, tuple[str, float]] = {}  # task → (trial path, submitted at)
    try:
        if gpus_per_trial is None:
            gpus_per_trial = gpus_for(devices or set(), ray.cluster_resources().get("GPU", 0.0))
        task = ray.remote(_ray_trial).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)

        def submit(path: str) -> None:
            attempts[path] = attempts.get(path, 0) + 1
            pending[task.remote(path, study_entry)] = (path, time.perf_counter())

        for p in paths:
            submit(p)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            path, t0 = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as e:  # the worker died (or its node): the trial could not record it
                outcome = {"path": path, "status": "failed", "error": f"worker died: {_first_line(e)}",
                           "seconds": time.perf_counter() - t0}
                record_failure(path, outcome["error"])
            final = outcome["status"] == "done" or attempts[path] > retries
            on_done({**outcome, "attempt": attempts[path], "final": final})
            if not final:
                submit(path)
    except BaseException:  # Ctrl-C or a driver error: stop the trials still running
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(e).__name__}: {line}" if line else type(e).__name__
