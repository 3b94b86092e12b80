"""Sweeps on a real Ray cluster: a head started on 127.0.0.1 by this module (``ray start
--head --block``, 2 CPUs) and stopped at its end, its workers separate processes.

The sweep is the cheap study of ``cheap_study.py`` over x ∈ {1, 2, 3, 4}: trial x=2 raises,
trial x=3 stalls until the test kills its worker (SIGKILL by pid). With ``retries=1`` each of
the two is tried twice and recorded failed with its errors; the other two finish. The test
then cures the two and runs the same sweep again: only they run, the finished trials' files
are untouched, and every trial's rows are in the runs store.

Skipped, with the reason, where Ray is not installed (``pip install 'iclab[ray]'``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import iclab.studies
from iclab.runs.run import Run
from iclab.studies import StudyEntry

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'iclab[ray]')")

SRC = Path(__file__).resolve().parents[2] / "src"
HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1 with 2 CPUs, in its own process group (stopped by that group's id)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "ICLAB_NO_PROGRESS": "1"}
    env.pop("RAY_ADDRESS", None)
    ports = {flag: str(_free_port()) for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port",
                                                  "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                                                  "--metrics-export-port", "--node-manager-port",
                                                  "--object-manager-port")}
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
           "--object-store-memory", str(100 * 2**20), "--temp-dir", temp, "--disable-usage-stats",
           *(x for kv in ports.items() for x in kv)]
    log = open(Path(temp) / "head.log", "w")
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # up when a driver can connect
            if head.poll() is not None:
                pytest.fail(f"ray start exited with {head.returncode}: {(Path(temp) / 'head.log').read_text()[-2000:]}")
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
                break
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    pytest.fail(f"no Ray head at {address} after 90 s")
                time.sleep(1)
        assert ray.cluster_resources().get("CPU") == 2
        ray.shutdown()  # the sweep connects by itself
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop_group(head)
        log.close()
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the head's process group (``ray start --block`` stops its services), SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture
def cheap_remote(tmp_path, monkeypatch):
    """Register the cheap study (module ``cheap_study``, importable by the workers through the
    head's PYTHONPATH) with a preset over x ∈ {1, 2, 3, 4}: x=2 fails, x=3 stalls."""
    configs = tmp_path / "configs"
    (configs / "cheap-remote").mkdir(parents=True)
    (configs / "cheap-remote" / "cpu.yaml").write_text("x: 0\nfail_on: 2\nstall_on: 3\nsweep:\n  x: [1, 2, 3, 4]\n")
    monkeypatch.setenv("ICLAB_CONFIGS", str(configs))
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(iclab.studies.STUDIES, "cheap-remote",
                        StudyEntry("cheap-remote", "a cheap test study", "cheap_study"))
    return tmp_path / "runs"


def _calls(trial: Path) -> list[int]:
    f = trial / "calls"
    return [int(x) for x in f.read_text().split()] if f.is_file() else []


def _kill_each_stall(trial: Path, times: int, sweep: threading.Thread, timeout_s: float = 150) -> list[int]:
    """SIGKILL the worker of ``trial`` each time it writes a new pid, up to ``times`` times, while
    the sweep runs (at most ``timeout_s``)."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout_s
    while len(killed) < times and sweep.is_alive() and time.monotonic() < deadline:
        pids = [int(p) for p in (trial / "pids").read_text().split()] if (trial / "pids").is_file() else []
        if len(pids) > len(killed):
            os.kill(pids[len(killed)], signal.SIGKILL)
            killed.append(pids[len(killed)])
        time.sleep(0.1)
    return killed


@pytest.mark.slow  # the cluster and its workers start in about half a minute
def test_ray_sweep_records_failures_and_dead_workers_retries_and_reruns_only_what_is_missing(ray_head, cheap_remote):
    from iclab.api import results
    from iclab.sweep import run_sweep

    sweep_dir = cheap_remote / "cheap-remote" / "on-ray"
    outcome = {}
    sweep = threading.Thread(target=lambda: outcome.update(res=run_sweep(
        "cheap-remote", "cpu", out=cheap_remote, name="on-ray", executor="ray", address=ray_head, retries=1)))
    sweep.start()
    killed = _kill_each_stall(sweep_dir / "x=3", 2, sweep)  # its first attempt and its retry
    if len(killed) < 2:  # x=3 was not tried again: cure it, or the sweep waits for its stall to time out
        (sweep_dir / "x=3" / "cured").touch()
    sweep.join(timeout=180)
    assert not sweep.is_alive() and "res" in outcome, "the sweep did not finish"
    res = outcome["res"]
    assert len(killed) == 2, f"x=3 was started {len(killed)} time(s), not 2"
    assert len(set(killed)) == 2 and os.getpid() not in killed  # two workers, not the driver
    (sweep_dir / "x=3" / "cured").unlink(missing_ok=True)

    by_name = {t.name: t for t in res.trials}
    assert {n: t.status for n, t in by_name.items()} == {"x=1": "done", "x=2": "failed", "x=3": "failed",
                                                         "x=4": "done"}
    assert [t.attempts for t in res.trials] == [1, 2, 2, 1]  # retries=1: each failed trial tried twice
    assert by_name["x=2"].errors == ["RuntimeError: x = 2 is cursed"] * 2
    assert len(by_name["x=3"].errors) == 2 and all(e.startswith("worker died:") for e in by_name["x=3"].errors)
    assert {n: _calls(sweep_dir / n) for n in by_name} == {"x=1": [1], "x=2": [2, 2], "x=3": [3, 3], "x=4": [4]}
    for name, why in (("x=2", "cursed"), ("x=3", "worker died")):  # recorded in the trial's run.json and sweep.json
        assert Run(sweep_dir / name).meta["status"] == "failed" and why in Run(sweep_dir / name).meta["error"]
    state = json.loads((sweep_dir / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["done", "failed", "failed", "done"]
    assert state["trials"][2]["attempts"] == 2 and "worker died" in state["trials"][2]["error"]
    assert "attempt 2: worker died" in (sweep_dir / "report.html").read_text()
    done_files = {p: p.stat().st_mtime_ns for n in ("x=1", "x=4") for p in (sweep_dir / n).rglob("*") if p.is_file()}

    for name in ("x=2", "x=3"):
        (sweep_dir / name / "cured").touch()
    again = run_sweep("cheap-remote", "cpu", out=cheap_remote, name="on-ray", executor="ray", address=ray_head)
    assert [t.status for t in again.trials] == ["done"] * 4
    assert [t.attempts for t in again.trials] == [0, 1, 1, 0]  # the finished two were skipped
    assert {n: _calls(sweep_dir / n) for n in by_name} == {"x=1": [1], "x=2": [2, 2, 2], "x=3": [3, 3, 3],
                                                           "x=4": [4]}
    assert {p: p.stat().st_mtime_ns for p in done_files} == done_files
    df = results("select run, value from metrics order by run", cheap_remote)
    assert list(df["run"]) == [f"on-ray/x={x}" for x in (1, 2, 3, 4)] and list(df["value"]) == [1, 4, 9, 16]


def test_ray_sweep_on_the_command_line_names_a_cluster_it_cannot_reach(cheap_remote):
    from typer.testing import CliRunner

    from iclab.cli import app

    res = CliRunner().invoke(app, ["sweep", "cheap-remote", "--out", str(cheap_remote), "--executor", "ray",
                                   "--address", f"127.0.0.1:{_free_port()}"])
    assert res.exit_code == 2 and "cannot connect to a Ray cluster" in res.output, res.output
    assert not (cheap_remote / "cheap-remote").exists()  # refused before anything was written
