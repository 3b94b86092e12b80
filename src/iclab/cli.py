"""The command line: ``iclab list | run | resume | report | results``.

User errors (a bad config key or value, an unknown study or preset, a model that does not
load) print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from iclab.errors import IclabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="iclab: a laboratory for in-context learning.")
out = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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
            out_dir: Path = typer.Option(Path("runs"), "--out", "-o", help="runs root directory")) -> None:
    """Run a study; the report is written at the end."""
    from iclab.api import run
    from iclab.config import parse_overrides

    try:
        r = run(study, preset=preset, overrides=parse_overrides(set_), model=model, out=out_dir)
    except IclabError as e:
        _fail(e)
    out.print(f"run finished: {r.path}\nreport: {r.path / 'report.html'}")


@app.command("resume")
def resume_cmd(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Continue a stopped run from its last checkpoints."""
    from iclab.api import resume

    try:
        r = resume(run_dir)
    except IclabError as e:
        _fail(e)
    out.print(f"run finished: {r.path}\nreport: {r.path / 'report.html'}")


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Rebuild a run's report.html."""
    from iclab.api import report

    try:
        path = report(run_dir)
    except (IclabError, FileNotFoundError) as e:
        _fail(e)
    out.print(f"report: {path}")


@app.command("results")
def results_cmd(sql: str = typer.Argument(..., help="SQL over the views `metrics` and `runs`"),
                root: Path = typer.Option(Path("runs"), "--root", help="runs root directory"),
                limit: int = typer.Option(50, help="rows shown at most")) -> None:
    """Query every run's results with SQL (DuckDB)."""
    from iclab.api import results

    try:
        cols, rows = results(sql, root)
    except IclabError as e:
        _fail(e)
    t = Table(*cols)
    for row in rows[:limit]:
        t.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    out.print(t)
    if len(rows) > limit:
        out.print(f"({len(rows) - limit} more rows; raise --limit)")


from iclab.sweep.cli import sweep_cmd  # noqa: E402

app.command("sweep")(sweep_cmd)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
