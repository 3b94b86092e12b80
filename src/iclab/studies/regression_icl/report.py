"""The regression-icl report, from the stored run alone: its rows (error curves, shifts, probe) and
the per-prompt errors in ``arrays/errors.npz``."""

from __future__ import annotations

import numpy as np

from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.common import training_section
from iclab.studies.regression_icl import figures as figs
from iclab.studies.regression_icl.config import FunctionClass, RegressionICLConfig
from iclab.studies.regression_icl.measure import MODEL
from iclab.studies.regression_icl.shifts import SHIFT_NAMES

#: what the error is divided by, per class, in words
SIGNAL_WORDS = {"sparse-linear": "the sparsity s", "decision-tree": "1 (E[f(x)²] = 1 for trees)"}

#: what each class is expected to show (Garg et al. 2022), and the predictors its check compares
EXPECTED = {
    "linear": "the transformer matches least squares: within 2x of its error at n = 2d and below averaging",
    "noisy-linear": "the transformer matches least squares: within 2x of its error at n = 2d and below averaging",
    "sparse-linear": "the transformer tracks Lasso rather than least squares: at n = d/2 it is below least squares "
                     "and within 2x of Lasso",
    "decision-tree": "the transformer beats greedy tree learning: at the last point it is below both greedy trees",
    "relu-net": "the transformer does at least as well as a 2-layer net trained by GD on the prompt: at the last "
                "point it is below it",
}
#: absolute floor of the '2x' checks: where the reference is at the noise floor of float32 (noiseless least
#: squares after d points is exact), 2x of ~0 cannot be met; 0.01 is 1% of predicting 0
FLOOR = 0.01


def num(v: float) -> str:
    """A number in prose, for people, never with an exponent: 3 significant digits, whole numbers from
    100 on (least squares' mean near n = d runs into the thousands), "<0.001" for float rounding
    (noiseless least squares reaches ~1e-13 after d examples)."""
    if v != v:
        return "–"
    if 0 < abs(v) < 5e-4:
        return "<0.001" if v > 0 else ">−0.001"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) >= 0.01 or v == 0 else f"{v:.3f}"


def check_points(world: FunctionClass) -> dict[str, int]:
    """The n at which the report reads the curves: d/2, d and 2d (capped at the last point)."""
    last = world.points - 1
    return {"d/2": min(last, max(1, world.dim // 2)), "d": min(last, world.dim), "2d": min(last, 2 * world.dim)}


def finding(kind: str, at: dict[str, dict[str, float]], last: dict[str, float]) -> tuple[bool | None, str]:
    """Whether this run shows the class's expected finding; ``at[n][label]`` the mean error at the check
    points, ``last[label]`` at the last point. None when a predictor the check needs was not run."""
    try:
        if kind in ("linear", "noisy-linear"):
            m, ls, avg = at["2d"][MODEL], at["2d"]["least-squares"], at["2d"]["averaging"]
            ok = m <= 2 * max(ls, FLOOR if kind == "linear" else 0.0) and m < avg
            return ok, (f"at n = 2d the transformer's error is {num(m)}, least squares {num(ls)} (2x: "
                        f"{num(2 * ls)}{f', floor {FLOOR}' if kind == 'linear' else ''}), averaging {num(avg)}")
        if kind == "sparse-linear":
            m, ls, lasso = at["d/2"][MODEL], at["d/2"]["least-squares"], at["d/2"]["lasso"]
            ok = m < ls and m <= 2 * max(lasso, FLOOR)
            return ok, f"at n = d/2 the transformer's error is {num(m)}, least squares {num(ls)}, Lasso {num(lasso)}"
        if kind == "decision-tree":
            m, trees = last[MODEL], min(last["tree-4"], last["tree"])
            return m < trees, (f"at the last point the transformer's error is {num(m)}, the better greedy tree "
                               f"{num(trees)}")
        m, nn = last[MODEL], last["nn-gd"]
        return m < nn, f"at the last point the transformer's error is {num(m)}, the 2-layer net by GD {num(nn)}"
    except KeyError as e:
        return None, f"the check needs the predictor {e.args[0]!r}, which this run did not evaluate"


def ratio(model: float, ls: float) -> float | str:
    """The model's error over least squares'; "LS exact" where least squares is at float rounding."""
    return model / ls if ls > 1e-9 else "LS exact"


def curve(rows: Rows) -> figs.Curve:
    """(n, mean, lo, hi) of one predictor's rows; lo/hi from the bootstrap band, or ±1.96 SE."""
    n, mean = rows.where(metric="error").series("pos")
    if rows.where(metric="error_lo"):
        return n, mean, rows.where(metric="error_lo").series("pos")[1], rows.where(metric="error_hi").series("pos")[1]
    se = rows.where(metric="error_se").series("pos")[1]
    return n, mean, mean - 1.96 * se, mean + 1.96 * se


def describe_world(cfg: RegressionICLConfig) -> str:
    w = cfg.world
    extra = {"sparse-linear": f", sparsity {w.sparsity}", "decision-tree": f", depth {w.depth}",
             "relu-net": f", {w.hidden} hidden units"}.get(w.kind, "")
    noise = f", label noise σ = {w.sigma:g}" if w.sigma > 0 else ""
    cur = ""
    if w.curriculum is not None:
        ramps = [f"{name} from {r.start} by {r.inc} every {r.every} steps"
                 for name, r in (("points", w.curriculum.points), ("active dims", w.curriculum.dims)) if r is not None]
        cur = "; curriculum: " + ", ".join(ramps) if ramps else ""
    return f"{w.kind} functions, d = {w.dim}{extra}, {w.points} points per prompt{noise}{cur}"


def report(cfg: RegressionICLConfig, run: Run) -> Report:
    rows = run.load_rows()
    world, d = cfg.world, cfg.world.dim
    errors = run.load_arrays("errors")
    n_params = int(run.load_arrays("model")["n_params"])
    final = rows.where(probe="icl_error", label=None)
    labels = final.unique("model")
    colors = figs.colors_for(labels)
    curves = {label: curve(final.where(model=label)) for label in labels}
    ylabel = {"sparse-linear": "squared error / s", "decision-tree": "squared error"}.get(world.kind, "squared error / d")
    points = check_points(world)
    at = {k: {label: float(curves[label][1][list(curves[label][0]).index(n)]) for label in labels}
          for k, n in points.items()}
    last = {label: float(curves[label][1][-1]) for label in labels}
    ok, evidence = finding(world.kind, at, last)
    step = int(final.where(model=MODEL)[0].step) if final.where(model=MODEL)[0].step is not None else None

    # ---- error curves
    fig_err = run.save_figure(figs.error_curves(curves, colors, d, f"In-context {world.kind} regression, d = {d}",
                                                ylabel), "error_curves")
    band = f"{cfg.eval.level:.0%} bootstrap band over the {cfg.eval.n_prompts} prompts ({cfg.eval.bootstrap} resamples)"

    def cell(label: str, n: int) -> str:
        c = curves[label]
        i = list(c[0]).index(n)
        return f"{num(c[1][i])} [{num(c[2][i])}, {num(c[3][i])}]"

    n_cols = list(dict.fromkeys(points.values()))
    median = {label: np.median(e, axis=0) / world.signal for label, e in errors.items()}
    err_table = Table(["predictor", *[f"n = {n}" for n in n_cols], f"median at n = {points['2d']}"],
                      [[label, *[cell(label, n) for n in n_cols],
                        float(median[label][points["2d"]]) if label in median else float("nan")] for label in labels],
                      caption=f"Mean normalised squared error [{band}]; 'zero' predicts 0. Least squares' mean has "
                              "heavy tails near n = d, where its median is the steadier number.")

    # ---- least squares' peak and the model near n = d
    ls = curves.get("least-squares")
    peak_text = ""
    if ls is not None:
        k = int(ls[0][1:][np.argmax(ls[1][1:])])
        mc = curves[MODEL]
        mk = int(mc[0][1:][np.argmax(mc[1][1:])])
        peak_text = (f"Least squares' error is highest at n = {k} ({num(ls[1][list(ls[0]).index(k)])}); the "
                     f"transformer's at n = {mk} ({num(mc[1][list(mc[0]).index(mk)])}), and at n = d = "
                     f"{points['d']} it is {num(at['d'][MODEL])}.")

    # ---- summary paragraph, from this run's numbers
    others = [label for label in labels if label not in (MODEL, "zero")]
    n2d = points["2d"]
    listing = ", ".join(f"{label} {num(at['2d'][label])}" for label in others)
    verdict = {True: "This run shows the expected finding.",
               False: "⚠ Contradicts the expected finding (Garg et al.'s, stated above).",
               None: "The expected finding could not be checked."}[ok]
    ridge = next((e for e in cfg.baselines() if e.baseline == "ridge"), None)
    ridge_text = (f" Ridge uses α = {ridge.params.get('alpha', 0.01):g}"
                  + (f" = σ², the posterior mean for w ~ N(0, I) (Bayes-optimal)." if world.sigma > 0 and
                     abs(ridge.params.get("alpha", 0.01) - world.sigma**2) < 1e-12 else ".")) if ridge else ""
    model_text = (f"The regression transformer loaded from {run.meta['model']} ({n_params:,} parameters), evaluated"
                  if run.meta.get("model") else
                  f"A {cfg.model.family} transformer ({cfg.model.n_layers} layers, width {cfg.model.d_model}, "
                  f"{cfg.model.n_heads} heads, {n_params:,} parameters) with a linear read-in and read-out, trained "
                  f"{step} steps (batch {cfg.train.batch_size})")
    n2d_text = f"n = 2d = {n2d}" if n2d == 2 * d else f"n = {n2d} (the last point; 2d = {2 * d})"
    summary = (f"{model_text} on {describe_world(cfg)}. "
               f"Errors are squared errors divided by {SIGNAL_WORDS.get(world.kind, 'd')} (Garg et al.'s "
               f"normalisation: predicting 0 scores about 1), averaged over {cfg.eval.n_prompts} prompts.{ridge_text} "
               f"At {n2d_text} the transformer's error is {num(at['2d'][MODEL])}; {listing}; predicting 0 "
               f"{num(at['2d']['zero'])}. {peak_text} Expected (Garg et al. 2022): {EXPECTED[world.kind]}. "
               f"Here {evidence}. {verdict}")

    sections = [Section("Error against in-context examples",
                        f"Squared error divided by {SIGNAL_WORDS.get(world.kind, 'd')}, against the number n of "
                        f"examples before the query; the shaded bands are the {band}.",
                        figures=[Figure(fig_err, "One colour per predictor in every figure; the transformer is "
                                                 "the thick black line, 'zero' (dotted) predicts 0. The axis "
                                                 f"goes no lower than {figs.FLOOR:g} (noiseless least squares is exact after "
                                                 "d examples); the table has the numbers.")],
                        tables=[err_table])]

    # ---- training curve
    track = rows.where(probe="icl_error", metric="error", model=MODEL, label="training")
    if track:
        steps = np.array(sorted(track.unique("step")))
        model_curves = {f"n = {n} ({k})": track.where(pos=n).series("step")[1] for k, n in points.items()}
        refs = {f"n = {n} ({k})": {label: at[k][label] for label in ("least-squares", "averaging") if label in at[k]}
                for k, n in points.items()}
        fig_tr = run.save_figure(figs.training_curves(steps, model_curves, refs, colors), "training")
        sections.append(Section("Over training", f"The transformer's error on {cfg.eval.eval_every_prompts} fixed "
                                "prompts at each probe step; dashed: least squares and averaging at the end.",
                                figures=[Figure(fig_tr, "Error at n = d/2, d and 2d against training step.")]))

    # ---- shifts
    shifts = rows.where(probe="shift")
    if shifts:
        names = shifts.unique("label")
        panels = {SHIFT_NAMES[s]: {label: curve(shifts.where(label=s, model=label)) for label in
                                   shifts.where(label=s).unique("model")} for s in names}
        fig_sh = run.save_figure(figs.shift_panels(panels, colors, d, ylabel), "shifts")
        table_rows = []
        for s in names:
            sub = shifts.where(label=s, metric="error")
            n_avail = sorted(sub.where(model=MODEL).unique("pos"))
            n = points["2d"] if points["2d"] in n_avail else max(n_avail)
            v = {label: sub.value(model=label, pos=n) for label in sub.unique("model")}
            table_rows.append([SHIFT_NAMES[s], n, v[MODEL], v["least-squares"], v["zero"],
                               ratio(v[MODEL], v["least-squares"])])
        no_shift = [["no shift", points["2d"], at["2d"][MODEL], at["2d"].get("least-squares", float("nan")),
                     at["2d"]["zero"], ratio(at["2d"][MODEL], at["2d"].get("least-squares", float("nan")))]]
        sh = cfg.shifts
        sections.append(Section(
            "Distribution shifts",
            f"The trained transformer against least squares on {sh.n_prompts} shifted prompts per shift (Garg et al. "
            f"section 4): x scaled by {sh.scale:g}; x with a skewed covariance (eigenvalues ∝ 1/(i+1)², trace d); "
            "the examples in one orthant with the query anywhere, or in the opposite orthant; label noise "
            f"σ = {sh.noise_std:g}; the query orthogonal to the examples' span (n < d only). Same normalisation as "
            "above, so a scaled x raises every error, predicting 0 included.",
            figures=[Figure(fig_sh, f"One panel per shift; bands: {cfg.eval.level:.0%} bootstrap band over the "
                                    "prompts.")],
            tables=[Table(["shift", "n", "transformer", "least squares", "predicting 0", "transformer / LS"],
                          no_shift + table_rows, caption="At n = 2d (the last n < d for the subspace shift).")]))

    # ---- linear probe
    probe = rows.where(probe="linear_probe")
    if probe:
        labels_tt = probe.unique("label")  # "<target>@<token>"
        targets = list(dict.fromkeys(lab.split("@")[0] for lab in labels_tt))
        tokens = list(dict.fromkeys(lab.split("@")[1] for lab in labels_tt))
        probe_steps = sorted(probe.unique("step"))
        end = probe_steps[-1]
        layers = np.array(sorted(probe.unique("layer")))
        r2 = {tok: {t: {s: probe.where(label=f"{t}@{tok}", step=s).series("layer")[1] for s in probe_steps}
                    for t in targets} for tok in tokens}
        target_colors = {t: {"w_ols": figs.FIXED_COLORS["least-squares"], "w_ridge": figs.FIXED_COLORS["ridge"],
                             "w_avg": figs.FIXED_COLORS["averaging"], "w": "black", "query": "#7f7f7f"}.get(t, "#ff7f0e")
                         for t in targets}
        token_names = {"x": "the query's x", "y": "the last example's y"}
        fig_pr = run.save_figure(figs.probe_r2(r2, layers, target_colors, token_names), "linear_probe")
        words = {"w_ols": "least-squares weights", "w_ridge": f"ridge weights (α = σ² = {world.sigma**2:g})",
                 "w_gd": f"{cfg.gd.steps} steps of GD (lr {cfg.gd.lr:g})",
                 "w_avg": "one GD step with lr 1 (averaging, Xᵀy/n)", "w": "the true weights",
                 "query": "the query x itself, a control (in the state at its own token; not yet at the y before it)"}

        def best(tok: str, t: str) -> str:
            v = r2[tok][t][end]
            li = int(np.argmax(v))
            return (f"{t} at {tok}: R² {v[li]:.2f} (layer {int(layers[li])}; untrained: "
                    f"{r2[tok][t][probe_steps[0]].max():.2f})") if len(probe_steps) > 1 else f"{t} at {tok}: R² {v[li]:.2f}"

        sections.append(Section(
            "Linear probe for the weight vector (Akyürek et al.)",
            f"A ridge probe (α = {cfg.probe.alpha:g} per row on standardised states) from each layer's residual "
            f"stream to a weight vector fitted to the n examples before a query, read at the query's x token and at "
            f"the y token of the last example (which has seen the same examples), trained on the states of "
            f"{1 - cfg.probe.test_fraction:.0%} of {cfg.probe.n_prompts} prompts and scored on the rest (held-out "
            f"R², variance-weighted over the d coordinates), pooled over n = {cfg.probe.min_examples}.."
            f"{world.points - 1}. Targets: " + "; ".join(f"{t}: {words.get(t, t)}" for t in targets) + ". "
            "Best layer at the end of training: " + "; ".join(best(tok, t) for tok in tokens for t in targets) + ". "
            "R² near 0 means no linear read-out of that vector from one state: the model may still predict "
            "through the products w·x it needs without holding w in a single token.",
            figures=[Figure(fig_pr, "Held-out R² per layer; dashed: the untrained model (step 0). The axis stops "
                                    "at -0.5; the table has every value.")],
            tables=[Table(["layer", *labels_tt], [[int(layer), *[float(r2[lab.split("@")[1]][lab.split("@")[0]][end][li])
                                                               for lab in labels_tt]]
                                                 for li, layer in enumerate(layers)],
                          caption=f"Held-out R² at step {end}, target@token.")]))
    sections += filter(None, [training_section(run, rows)])
    return Report(title=f"In-context regression ({world.kind}): transformers against learning algorithms",
                  summary=summary, sections=sections)
