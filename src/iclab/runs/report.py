"""The report: ``report.json`` (what a study says) rendered as a self-contained ``report.html``.

A study describes its report as data: a title, a summary, and sections with text, tables
(lists of rows) and figures (PNG files of the run). :func:`render` turns that into one HTML
file with the figures inlined as base64, so the file can be mailed or opened anywhere;
``iclab report RUN`` calls it again, so a report can be rebuilt from the run alone.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iclab.atomic import atomic_write_text


@dataclass
class Figure:
    path: str  # relative to the run directory
    caption: str = ""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Section:
    heading: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    title: str
    summary: str = ""
    sections: list[Section] = field(default_factory=list)

    def save(self, run_dir: Path) -> Path:
        atomic_write_text(run_dir / "report.json", json.dumps(asdict(self), indent=2))
        return render(run_dir)

    @classmethod
    def load(cls, run_dir: Path) -> "Report":
        d = json.loads((run_dir / "report.json").read_text())
        sections = [Section(s["heading"], s["text"], [Figure(**f) for f in s["figures"]],
                            [Table(**t) for t in s["tables"]]) for s in d["sections"]]
        return cls(d["title"], d["summary"], sections)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em} figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em} table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left} pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
details{margin-top:1.5em}
"""

# Lets a browser test read how many figures loaded: sets data-images-loaded / -total on <body>.
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', imgs.length);
  document.body.setAttribute('data-images-loaded', ok);
});
"""


def _fmt(v: Any) -> str:
    """A table cell for people: 3 significant digits, no exponents; "–" for a missing value (a
    table with one says why in its caption)."""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v != v:
            return "–"
        if v == 0 or abs(v) < 5e-4:
            return "0" if v == 0 else ("&lt;0.001" if v > 0 else "&gt;−0.001")
        if abs(v) >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.3f}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(int(v)) >= 1e4:
        return f"{int(v):,}"
    return html.escape(str(v))


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _figure(run_dir: Path, f: Figure) -> str:
    png = (run_dir / f.path).read_bytes()
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(f.caption or f.path)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")


def render_page(directory: Path, rep: Report, meta: dict[str, Any], details: tuple[str, str]) -> str:
    """The HTML page of ``rep``: figures read from ``directory`` and inlined, ``meta`` (label →
    value) as the line under the title, ``details = (summary, text)`` folded at the end. Runs
    and sweeps share it, so every report looks the same."""
    meta_line = " · ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in meta.items())
    parts = [f"<h1>{html.escape(rep.title)}</h1>", f'<div class="meta">{meta_line}</div>',
             _paragraphs(rep.summary)]
    for s in rep.sections:
        parts.append(f"<h2>{html.escape(s.heading)}</h2>{_paragraphs(s.text)}")
        parts += [_table(t) for t in s.tables]
        parts += [_figure(directory, f) for f in s.figures]
    parts.append(f"<details><summary>{html.escape(details[0])}</summary><pre>{html.escape(details[1])}</pre></details>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(rep.title)}</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>{''.join(parts)}</body></html>")


def render(run_dir: str | Path) -> Path:
    """Write ``report.html`` of the run at ``run_dir`` from its report.json, config and figures."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    line = {"study": meta["study"], "run": meta["run"], "preset": meta.get("preset"),
            "created": meta["created"], "status": meta.get("status", "?")}
    page = render_page(run_dir, Report.load(run_dir), line, ("Resolved config", (run_dir / "config.yaml").read_text()))
    return atomic_write_text(run_dir / "report.html", page)
