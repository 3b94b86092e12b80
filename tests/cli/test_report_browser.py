"""Every study's report as a newcomer meets it: a tiny run of each registered study, rendered in a
real headless browser (Debian's chromium).

For each study: every figure loads and the page is not blank; each trained model has at least 100
points of training loss (the ``log`` rows) and the report has its training-curves figure; the page
text holds no ``nan``, ``inf``, ``None``, exponent or Python dict/array dump; and the headline
numbers of the summary equal the values read from the run's own rows. For induction-heads the
1-layer model, trained beside a 2-layer one, is not called a phase change.

A study registered in ``iclab.studies.STUDIES`` without an entry in ``CASES`` fails here: add its
tiny overrides (seconds on one CPU thread, ``train.steps >= 100``) and its headline numbers.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

import iclab
from iclab.rows import Rows
from iclab.studies import STUDIES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MIN_POINTS = 100  # loss points per trained model (train.log_every defaults to steps // 100)


def signed(x: float) -> str:
    """``+0.12`` / ``-0.12``, and ``+0.00`` rather than ``-0.00``: how the reports write nats."""
    return f"{round(float(x), 2) + 0.0:+.2f}"


# ---------------------------------------------------------------- what each summary must say, from the rows

def induction_heads(rows: Rows) -> list[str]:
    """Each depth's sentence, worded by the stated criterion (probe.phase_threshold 0.5, phase_icl_drop
    0.5); the 1-layer model, which cannot form an induction head, is never called a phase change."""
    out = []
    for n in ("L1", "L2"):
        m = rows.where(model=n)
        steps = sorted(m.where(metric="icl_score").unique("step"))
        b0, b1 = (m.where(metric="induction_score", step=s).max() for s in (steps[0], steps[-1]))
        i0, i1 = (m.value("icl_score", label=None, step=s) for s in (steps[0], steps[-1]))
        icl = f"the ICL score goes from {signed(i0)} to {signed(i1)} nats"
        if n == "L2" and b0 < 0.5 <= b1 and i0 - i1 >= 0.5:
            out += [f"{n}: induction head ", f"(best score {b0:.2f} → {b1:.2f}) and {icl}"]
        else:
            out.append(f"{n}: no phase change (best induction score {b0:.2f} → {b1:.2f}, threshold 0.5); {icl}")
    return out


def icg_generalization(rows: Rows) -> list[str]:
    r = rows.where(probe="ictr", label="R", pos=2)  # probe.report_shot = 2
    last = max(r.unique("step"))
    ictr, untrained, bayes = r.value("ictr", step=last), r.value("ictr", step=0), r.value("bayes_ictr", step=last)
    return [f"(ICTR_R {ictr:.2f} at k = 2, untrained {untrained:.2f})",
            f"ICTR_R = {ictr:.2f} (untrained {untrained:.2f}, Bayes-optimal {bayes:.2f})"]


def graph_tracing(rows: Rows) -> list[str]:
    g = rows.where(probe="graph", label="grid", layer=None)  # the final trace on the new grid graph
    c = max(g.unique("pos"))
    v = {m: g.value(m, pos=c) for m in ("accuracy", "chance", "accuracy_no_backtrack", "chance_no_backtrack",
                                        "neighbor_mass")}
    return [(f"At context {c}: accuracy {v['accuracy']:.2f} (chance {v['chance']:.2f}), stepping back excluded "
             f"{v['accuracy_no_backtrack']:.2f} (chance {v['chance_no_backtrack']:.2f}), mass on neighbours "
             f"{v['neighbor_mass']:.2f}"),
            (f"edges {v['accuracy_no_backtrack']:.0%} of the time with stepping back excluded "
             f"(chance {v['chance_no_backtrack']:.0%})")]


def task_vectors(rows: Rows) -> list[str]:
    err = rows.where(probe="regression", metric="error")
    last = max(err.unique("pos"))

    def per_basis(model):
        return ", ".join(f"{err.value(model=model, label=b, pos=last):.3f}" for b in err.unique("label"))
    td = rows.where(probe="td", metric="td", pos=2 * (20 - 1))  # the last x of world.points = 20
    steps = sorted(td.unique("step"))
    start, final = (td.where(step=s) for s in (steps[0], steps[-1]))
    best = max(final, key=lambda r: r.value)
    return [(f"the error per basis is {per_basis('transformer')} of predicting 0, against "
             f"{per_basis('least-squares')} for least squares"),
            f"Best mean TD rises from {start.max():.2f} (chance 0.25) to {best.value:.2f} (layer {best.layer})"]


def bayesian_icl(rows: Rows) -> list[str]:
    g = rows.where(probe="ginc", model="transformer")
    last = max(g.unique("step"))
    out = []
    for l in (3, 5):  # probe.lengths; k from 0 to 4 (probe.shots)
        a0, a4, b0, b4, lm = (g.value(m, label=f"id l={l}", pos=k, step=last) for m, k in
                              (("accuracy", 0), ("accuracy", 4), ("bayes_accuracy", 0), ("bayes_accuracy", 4),
                               ("pretrain_lm_accuracy", 4)))
        out.append(f"l = {l}: {a0:.2f} → {a4:.2f} (Bayes-optimal {b0:.2f} → {b4:.2f}, pretraining LM {lm:.2f} "
                   "at k = 4)")
    return out


def regression_icl(rows: Rows) -> list[str]:
    err = rows.where(probe="icl_error", metric="error", label=None)  # the final curves, not the tracking ones
    n = 6  # 2d for world.dim = 3
    v = {m: err.value(model=m, pos=n) for m in ("transformer", "least-squares", "averaging", "zero")}
    return [f"At n = 2d = {n} the transformer's error is {v['transformer']:.3g}; least-squares "
            f"{v['least-squares']:.3g}, averaging {v['averaging']:.3g}",
            f"predicting 0 {v['zero']:.3g}"]


def label_semantics(rows: Rows) -> list[str]:
    """The trained part (label-map world): how often flipped labels are followed at each k, and unrelated
    labels' accuracy at the largest k, at the last step."""
    acc = rows.where(probe="label_scoring")
    acc = acc.where(step=max(s for s in acc.unique("step") if s is not None))
    shots = sorted(k for k in acc.where(label="label-map/flipped").unique("pos"))
    follow = [acc.value("context_accuracy", label="label-map/flipped", pos=k) for k in shots]
    unrelated = acc.value("accuracy", label="label-map/unrelated", pos=shots[-1])
    return ["Flipped labels are followed in " + ", ".join(f"{f:.2f}" for f in follow) + " of prompts at k = "
            + ", ".join(map(str, shots)),
            f"Unrelated labels: {unrelated:.2f} at k = {shots[-1]}"]


def demo_selection(rows: Rows) -> list[str]:
    """One set: its zero-shot accuracy and kNN's gain over random demonstrations at the largest k."""
    acc = rows.where(probe="label_scoring", metric="accuracy")
    k = max(r.pos for r in acc if r.label.endswith("/random/ranked"))
    zero = acc.value(label="sentiment/zero-shot/ranked", pos=0)
    knn, rand = (acc.value(label=f"sentiment/{m}/ranked", pos=k) for m in ("knn", "random"))
    return [f"mean accuracy at k = {k}: zero-shot {zero:.2f}", f"kNN selection against random: {knn - rand:+.2f}"]


def data_properties(rows: Rows) -> list[str]:
    """Each model's final accuracy on holdout classes with fresh labels (ICL), with its chance level."""
    c = rows.where(probe="classification", label="fewshot-holdout")
    out = []
    for m in ("p_bursty=0.9", "p_bursty=0"):
        last = c.where(model=m)
        last = last.where(step=max(last.unique("step")))
        out.append(f"{m.replace('=', ' = ')} the model ")  # the first sentence starts with 'With'
        out.append(f"(holdout accuracy {last.value('accuracy'):.2f}, chance {last.value('chance'):.2f})")
    return out


@dataclass(frozen=True)
class Case:
    overrides: dict
    models: set[str]  # the models the run trains, each with its training curve
    headline: Callable[[Rows], list[str]]  # phrases the page must hold, with numbers from the rows
    absent: tuple[str, ...] = ()  # phrases the page must not hold
    pretrained: bool = False  # runs on a tiny saved GPT-2 (--model) instead of training one


CASES = {
    "induction-heads": Case(
        {"layers": [1, 2], "model.d_model": 32, "train.steps": 100, "train.eval_every": 100, "train.ckpt_every": 100,
         "train.warmup": 5, "probe.n_prompts": 16},
        {"L1", "L2"}, induction_heads,
        absent=("L1: induction head", "L1 crossed the phase-change threshold")),
    "icg-generalization": Case(
        {"train.steps": 100, "train.eval_every": 100, "train.ckpt_every": 100, "train.warmup": 5,
         "train.batch_size": 8, "model.size": "tiny", "probe.shots": [1, 2], "probe.report_shot": 2,
         "probe.n_prompts": 6},
        {"tiny"}, icg_generalization),
    "graph-tracing": Case(
        {"graph": {"walk_length": 32, "vocab": 24, "seed": 1},
         "pretrain": {"vocab": 24, "seq_len": 32, "max_nodes": 16, "n_graphs": 16},
         "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "max_len": 64},
         "train": {"steps": 100, "batch_size": 4, "warmup": 5, "eval_every": 100, "ckpt_every": 100},
         "probe": {"n_walks": 4, "n_contexts": 5, "window": 20, "min_present": 0.25, "train_walks": 2,
                   "batch_size": 4}},
        {"L2-d16"}, graph_tracing),
    "task-vectors": Case(
        {"world.bases": "orthogonal-4x16", "world.points": 20, "model.max_len": 40, "train.steps": 100, "train.eval_every": 100,
         "train.ckpt_every": 100, "train.batch_size": 16, "train.warmup": 5, "model.n_layers": 2,
         "model.d_model": 32, "model.n_heads": 2, "probe.n_per_basis": 12, "probe.eval_per_basis": 3,
         "probe.umap": False},
        {"transformer"}, task_vectors),
    "bayesian-icl": Case(
        {"train.steps": 100, "train.eval_every": 100, "train.ckpt_every": 100, "train.warmup": 5,
         "world.doc_len": 48, "model.d_model": 16, "model.n_layers": 1, "model.max_len": 64,
         "probe.shots": [0, 1, 4], "probe.lengths": [3, 5], "probe.n_prompts": 8, "lstm.d_model": 8},
        {"transformer", "lstm"}, bayesian_icl),
    "regression-icl": Case(
        {"world.dim": 3, "world.points": 7, "world.curriculum": {"points": {"start": 3, "every": 20}},
         "model": {"family": "gpt2", "n_layers": 2, "d_model": 16, "n_heads": 2, "max_len": 14},
         "train": {"steps": 100, "batch_size": 16, "warmup": 5, "eval_every": 50, "ckpt_every": 100},
         "eval": {"n_prompts": 16, "eval_every_prompts": 8, "bootstrap": 50},
         "shifts.n_prompts": 8, "probe": {"n_prompts": 16, "min_examples": 5}},
        {"transformer"}, regression_icl),
    "label-semantics": Case(
        {"models": [], "probe.shots": [1, 3], "probe.n_queries": 8, "train.steps": 100, "train.eval_every": 100,
         "train.ckpt_every": 100, "train.warmup": 5, "train.batch_size": 16, "model.d_model": 32},
        {"trained"}, label_semantics),
    "data-properties": Case(
        {"train.steps": 100, "train.eval_every": 100, "train.ckpt_every": 100, "train.warmup": 5,
         "train.batch_size": 8, "world.n_classes": 512, "world.n_features": 32, "model.d_model": 16,
         "model.n_heads": 2, "probe.n_prompts": 8},
        {"p_bursty=0.9", "p_bursty=0"}, data_properties),
    "demo-selection": Case(
        {"data.tasks": ["sentiment"], "selection.shots": [1, 2], "selection.n_queries": 5, "selection.orders": 3,
         "selection.encoder": "lm", "selection.batch_size": 64},
        set(), demo_selection, pretrained=True),
}

# Text no reader should meet: (pattern, what it is).
BAD_TEXT = [(r"(?i)\bnan\b", "nan"), (r"(?i)\binf(inity)?\b", "inf"), (r"\bNone\b", "None"),
            (r"\{'", "a Python dict"), (r"\[np\.|np\.float|array\(", "a NumPy dump"),
            (r"(?i)\b\d+(\.\d+)?e[-+]?\d+\b", "an exponent")]


def page_text(dom: str) -> str:
    """The text a reader sees: tags, scripts and styles stripped, entities decoded, spaces collapsed."""
    body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.mark.browser
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_report_in_chromium(study, tmp_path, request):
    if study not in CASES:
        pytest.fail(f"study {study!r} is registered but has no tiny run in CASES of {__file__}: add its overrides "
                    "(seconds on one CPU thread, train.steps >= 100), the models it trains and its headline numbers")
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make test installs Debian's chromium)")
        pytest.skip("chromium not installed")
    case = CASES[study]
    model = str(request.getfixturevalue("word_lm_dir")) if case.pretrained else None
    run = iclab.run(study, "cpu", overrides=case.overrides, model=model, out=tmp_path / "runs")
    rows = run.load_rows()
    report = json.loads((run.path / "report.json").read_text())

    # training curves: >= 100 loss points for every trained model, and the figure that shows them
    log = rows.where(probe="log", metric="loss")
    assert set(log.unique("model")) == case.models
    points = {m: len(log.where(model=m)) for m in case.models}
    training = [s for s in report["sections"] if s["heading"] == "Training"]
    if case.models:
        assert min(points.values()) >= MIN_POINTS, points
        assert training and [f["path"] for f in training[0]["figures"]] == ["figures/training_curves.png"]
    else:
        assert not training  # nothing trained here: no training section

    # every figure loads in the browser
    page = run.path / "report.html"
    n_figures = page.read_text().count("<img ")
    assert n_figures == sum(len(s["figures"]) for s in report["sections"]) >= 3
    shot = tmp_path / "report.png"  # one browser start: the DOM after the load script, and a screenshot
    browser = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=5000", "--window-size=1200,2400", f"--screenshot={shot}",
                              "--dump-dom", page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    dom = browser.stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, f"the report's load script did not run: {browser.stderr[-2000:]}"
    assert int(total.group(1)) == int(loaded.group(1)) == n_figures

    # the text: no dumps or unreadable numbers, and the headline numbers are the rows'
    text = page_text(dom).replace(run.path.name, "RUN")  # a run id like ...-1e40 is no exponent
    for pattern, what in BAD_TEXT:
        hit = re.search(pattern, text)
        assert hit is None, f"{study}: the page shows {what}: …{text[max(0, hit.start() - 80):hit.end() + 80]}…"
    assert "status done" in text
    if case.models:
        assert f"{min(points.values())} points per model" in text
    for phrase in case.headline(rows):
        assert phrase in text, f"{study}: the page does not say {phrase!r} (from its rows)"
    for phrase in case.absent:
        assert phrase not in text, f"{study}: the page says {phrase!r}"

    # and the page is not blank
    img = Image.open(shot).convert("L")
    assert img.size == (1200, 2400)
    assert len(np.unique(np.asarray(img))) > 20
