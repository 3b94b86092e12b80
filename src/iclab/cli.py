"""The command line: ``iclab list | run | resume | report | results | runs | sweep | probe``.

User errors (a bad config key or value, an unknown study or preset, a model that does not
load, a damaged run file) print one line and exit with status 2, without a traceback.
Warnings of iclab (a damaged file skipped, a checkpoint fallen back from) print one line
each, ``warning: ...``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from iclab.errors import IclabError, IclabWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="iclab: a laboratory for in-context learning.")
out = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


_show_other_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """iclab's own warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, IclabWarning):
        err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    else:
        _show_other_warning(message, category, filename, lineno, file, line)


@app.callback()
def _setup() -> None:
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", IclabWarning)


@app.command("list")
def list_studies() -> None:
    """List the studies and their presets."""
    from iclab.config import preset_names
    from iclab.studies import STUDIES

    t = Table("study", "presets", "what it shows")
    for s in STUDIES.values():
        t.add_row(s.name, ", ".join(preset_names(s.name)), s.description)
    out.print(t)


@app.command("run")
def run_cmd(study: str = typer.Argument(..., help="study name (see `iclab list`)"),
            preset: str = typer.Option("cpu", "--preset", "-p", help="preset name or a YAML file"),
            set_: Optional[list[str]] = typer.Option(None, "--set", "-s", help="override, e.g. train.steps=500"),
            model: Optional[str] = typer.Option(None, "--model", "-m", help="score a pretrained HF causal LM"),
            out_dir: Path = typer.Option(Path("runs"), "--out", "-o", help="runs root directory"),
            nproc: int = typer.Option(1, "--nproc", help="train with N processes (torchrun, DistributedDataParallel)"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or probe lines")) -> None:
    """Run a study; the report is written at the end."""
    from iclab.api import run
    from iclab.config import parse_overrides

    if nproc != 1:
        args = ["run", study, "--preset", preset, "--out", str(out_dir), *(a for s in set_ or [] for a in ("--set", s)),
                *(["--model", model] if model else []), *(["--quiet"] if quiet else [])]
        raise typer.Exit(_torchrun(nproc, args))
    _quiet(quiet)
    try:
        r = run(study, preset=preset, overrides=parse_overrides(set_), model=model, out=out_dir)
    except IclabError as e:
        _fail(e)
    _finished(r.path)


def _finished(path: Path) -> None:
    from iclab.train.distributed import ranks

    if ranks().main:  # under torchrun, once
        out.print(f"run finished: {path}\nreport: {path / 'report.html'}")


def _torchrun(nproc: int, args: list[str]) -> int:
    """Run ``iclab ARGS`` in ``nproc`` processes on this machine under torchrun; its exit status."""
    import subprocess

    if not 2 <= nproc <= 1024:
        _fail(IclabError(f"--nproc {nproc}; allowed: 1 to 1024"))
    if "WORLD_SIZE" in os.environ:
        _fail(IclabError("--nproc inside a torchrun job: give the processes to torchrun only"))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # the cores shared out
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "iclab.cli", *args]
    return subprocess.run(cmd, env=env).returncode


def _quiet(quiet: bool) -> None:
    if quiet:
        os.environ["ICLAB_NO_PROGRESS"] = "1"  # read by iclab.progress


@app.command("resume")
def resume_cmd(run_dir: Path = typer.Argument(..., help="a run directory"),
               nproc: int = typer.Option(1, "--nproc", help="train with N processes (torchrun, DistributedDataParallel)"),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or probe lines")) -> None:
    """Continue a stopped run from its last checkpoints."""
    from iclab.api import resume

    if nproc != 1:
        raise typer.Exit(_torchrun(nproc, ["resume", str(run_dir), *(["--quiet"] if quiet else [])]))
    _quiet(quiet)
    try:
        r = resume(run_dir)
    except IclabError as e:
        _fail(e)
    _finished(r.path)


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Rebuild a run's report.html."""
    from iclab.api import report

    try:
        path = report(run_dir)
    except (IclabError, FileNotFoundError) as e:
        _fail(e)
    out.print(f"report: {path}")


FORMATS = ("table", "csv", "json", "parquet")


@app.command("results")
def results_cmd(sql: str = typer.Argument(..., help="SQL over the views `metrics`, `checkpoint_probes` and `runs`"),
                root: Path = typer.Option(Path("runs"), "--root", help="runs root directory"),
                fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet"),
                output: Optional[Path] = typer.Option(None, "--output", "-O",
                                                      help="write to this file (atomically) instead of stdout"),
                limit: int = typer.Option(50, help="rows shown at most (table on the terminal)")) -> None:
    """Query every run's results with SQL (DuckDB); the SQL reads the views and no file."""
    from iclab.runs.export import write_frame
    from iclab.runs.results import query as results  # iclab.results without importing torch

    try:
        if fmt not in FORMATS:
            raise IclabError(f"--format {fmt!r}; allowed: {', '.join(FORMATS)}")
        if fmt == "parquet" and output is None:
            raise IclabError("--format parquet writes a binary file: give --output FILE")
        if output is not None and output.is_dir():
            raise IclabError(f"--output {str(output)!r} is a directory; give a file name")
        df = results(sql, root)
        if output is not None:
            try:
                write_frame(df, output, fmt)
            except OSError as e:
                raise IclabError(f"--output {str(output)!r} cannot be written: {e.strerror or e}") from None
            err.print(f"{len(df)} rows written to {output}", highlight=False, soft_wrap=True)
            return
    except IclabError as e:
        _fail(e)
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records") + "\n")
    else:
        _print_frame(df, limit)


def _print_frame(df, limit: int) -> None:
    t = Table(*map(str, df.columns))
    for row in df.head(limit).itertuples(index=False):
        t.add_row(*(_cell(v) for v in row))
    out.print(t)
    if len(df) > limit:
        out.print(f"({len(df) - limit} more rows; raise --limit)")


def _cell(v) -> str:
    import pandas as pd

    if v is None or (not isinstance(v, (list, tuple)) and pd.isna(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command("runs")
def runs_cmd(root: Path = typer.Option(Path("runs"), "--root", help="runs root directory"),
             study: Optional[str] = typer.Option(None, "--study", help="only runs of this study"),
             status: Optional[str] = typer.Option(None, "--status", help="only runs with this status "
                                                  "(running, done, failed, pending)")) -> None:
    """List the runs under a root, newest first: study, status, date and a headline number."""
    from iclab.errors import UnknownNameError
    from iclab.runs.store import list_runs  # iclab.runs without importing torch
    from iclab.studies import STUDIES, study_names

    try:
        if study is not None and study not in STUDIES:
            raise UnknownNameError("study", study, study_names())
        df = list_runs(root, study=study, status=status)
    except IclabError as e:
        _fail(e)
    disk = bool(df["checkpoints"].str.len().sum())  # the column only where a run keeps checkpoints
    t = Table("study", "run", "status", "created", "preset", "headline", *(["checkpoints"] if disk else []))
    for col in (*t.columns[1:4], *t.columns[6:]):
        col.no_wrap = True
    t.columns[5].min_width = 16
    colour = {"done": "green", "failed": "red", "running": "yellow"}
    for r in df.itertuples(index=False):
        st = f"[{colour[r.status]}]{r.status}[/]" if r.status in colour else str(r.status)
        created = str(r.created or "").replace("T", " ")[:16]
        t.add_row(r.study, r.run, st, created, str(r.preset or ""), r.headline, *([r.checkpoints] if disk else []))
    out.print(t)
    out.print(f"{len(df)} run(s) under {root}", highlight=False)


@app.command("probe")
def probe_cmd(run_dir: Path = typer.Argument(..., help="a finished run directory"),
              probe: str = typer.Argument(..., help="a probe with a recipe for the run's study, or induction, "
                                                    "icl, attention_patterns, logit_lens on its LMs"),
              set_: Optional[list[str]] = typer.Option(None, "--set", "-s",
                                                       help="probe parameter, e.g. probe.batch_size=32"),
              steps: Optional[str] = typer.Option(None, "--steps", help="checkpoint steps, e.g. 0,100,200 "
                                                                         "(default: every saved one)"),
              model: Optional[list[str]] = typer.Option(None, "--model", "-m",
                                                        help="only this model's checkpoints (repeatable)")) -> None:
    """Run a probe over a run's saved checkpoints: a curve over training without training again."""
    from iclab.config import parse_overrides
    from iclab.studies.history import probe_checkpoints

    try:
        params = parse_overrides(set_)
        bad = [k for k in params if not k.startswith("probe.") or k.count(".") != 1]
        if bad:
            raise IclabError(f"--set {bad[0]}: probe parameters are set as probe.NAME=VALUE")
        try:
            chosen = None if steps is None else [int(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            raise IclabError(f"--steps {steps!r}: give steps separated by commas, e.g. 0,100,200") from None
        rows = probe_checkpoints(run_dir, probe, {k.removeprefix("probe."): v for k, v in params.items()},
                                 steps=chosen, models=model)
    except IclabError as e:
        _fail(e)
    t = Table("model", "steps", "rows")
    for name in rows.unique("model"):
        mine = rows.where(model=name)
        t.add_row(name, ", ".join(map(str, mine.unique("step"))), str(len(mine)))
    out.print(t)
    out.print(f"rows added to {Path(run_dir) / 'checkpoint-probes' / (probe + '.parquet')} "
              f"(SQL view checkpoint_probes of iclab results)", highlight=False, soft_wrap=True)


from iclab.sweep.cli import sweep_cmd  # noqa: E402

app.command("sweep")(sweep_cmd)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
