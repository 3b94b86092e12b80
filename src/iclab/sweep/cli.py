"""``iclab sweep STUDY``: run a study's sweep grid and write the sweep's report.

Registered in :mod:`iclab.cli` as ``app.command("sweep")(sweep_cmd)``. User errors print
one line and exit with status 2; a sweep with failed trials exits with status 1 after
writing its report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from iclab.errors import IclabError

_out = Console()
_err = Console(stderr=True)


def sweep_cmd(study: str = typer.Argument(..., help="study name (see `iclab list`)"),
              preset: str = typer.Option("cpu", "--preset", "-p", help="preset name or a YAML file"),
              set_: Optional[list[str]] = typer.Option(None, "--set", "-s",
                                                       help="override on every trial, e.g. train.steps=500"),
              grid: Optional[list[str]] = typer.Option(
                  None, "--grid", "-g", help="sweep axis KEY=[V1,V2] (added to the preset's `sweep:`); "
                                             "zipped keys: K1,K2=\\[\\[a1,b1],\\[a2,b2]]"),
              out_dir: Path = typer.Option(Path("runs"), "--out", "-o", help="runs root directory"),
              executor: str = typer.Option("local", "--executor", "-e", help="local or ray"),
              workers: int = typer.Option(1, "--workers", "-w", help="local executor: trials at once"),
              name: Optional[str] = typer.Option(None, "--name", help="sweep id (default: preset and a hash)"),
              model: Optional[str] = typer.Option(None, "--model", "-m",
                                                  help="measure a pretrained model in every trial"),
              address: Optional[str] = typer.Option(
                  None, "--address", help="Ray: auto (the cluster on this machine), HOST:PORT or ray://HOST:PORT; "
                                          "default: start a local Ray"),
              retries: int = typer.Option(0, "--retries", help="try a failed trial (error or dead worker) again "
                                                                 "up to N more times"),
              cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs per trial"),
              gpus_per_trial: Optional[float] = typer.Option(
                  None, "--gpus-per-trial", help="Ray: GPUs per trial (default: 1 if train.device is cuda, or auto "
                                                 "on a cluster with GPUs; else 0)"),
              quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars or probe lines")) -> None:
    """Run every trial of a sweep grid (skipping finished ones) and write the sweep's report."""
    from iclab.config import parse_overrides
    from iclab.sweep.grid import parse_grid
    from iclab.sweep.runner import run_sweep

    if quiet:
        os.environ["ICLAB_NO_PROGRESS"] = "1"

    try:
        res = run_sweep(study, preset, parse_overrides(set_), parse_grid(grid), out_dir, executor=executor,
                        workers=workers, name=name, model=model, address=address, retries=retries,
                        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    except IclabError as e:
        _err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    done = sum(t.status == "done" for t in res.trials)
    _out.print(f"sweep finished: {res.path}\n{done} of {len(res.trials)} trials done"
               + (f", {len(res.failed)} failed: {', '.join(t.name for t in res.failed)}" if res.failed else "")
               + f"\nreport: {res.report}", highlight=False)
    if res.failed:
        raise typer.Exit(1)
