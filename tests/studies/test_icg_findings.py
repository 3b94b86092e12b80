"""The finding presets of icg-generalization, and what the sweep report says about findings 2–5,
on fabricated trials whose answer is known."""

from __future__ import annotations

import re

import pytest

from iclab.config import preset_path
from iclab.figures import plt
from iclab.studies import get_study
from iclab.studies.icg_generalization.figures import ictr_against
from iclab.studies.icg_generalization.findings import FLAG, Point, findings_text
from iclab.sweep.grid import expand_grid

TRIALS = {"finding2": 8, "finding3": 8, "finding4": 5, "finding5": 4}


@pytest.mark.parametrize("preset", sorted(TRIALS))
def test_finding_presets_validate_and_expand_to_the_trials_their_header_states(preset):
    study = get_study("icg-generalization")
    cfg = study.load_config(preset)
    trials = expand_grid(cfg.sweep)
    assert len(trials) == TRIALS[preset]
    for t in trials:
        study.load_config(preset, t.overrides)  # every trial's config validates
    header = preset_path("icg-generalization", preset).read_text(encoding="utf-8")
    assert f"{TRIALS[preset]} trials" in header
    assert re.search(rf"Finding {preset[-1]}\b", header)
    assert f"--preset {preset}" in header


def pt(values, R, U, C=None, size="mini", by_k=None, L=12):
    ictr = {"R": R, "U": U, **({"C": C} if C is not None else {})}
    return Point(values=values, size=size, paragraph_len=L, ictr=ictr, bayes={"R": 1.0, "C": 0.0, "U": 0.0},
                 by_k=by_k or {})


def only(points):
    text = findings_text(points)
    assert len(text) == 1, text
    return text[0]


# ---------------------------------------------------------------- finding 3: window and heads


def window_heads(small_w_r, small_w_u=0.0):
    """W ∈ {4, 105} × H ∈ {1, 4}; ICTR_R and ICTR_U at W = 4 are ``small_w_r``, ``small_w_u``; H
    changes nothing."""
    return [pt({"model.window": w, "model.n_heads": h}, R=r, U=u, C=u)
            for w, r, u in ((4, small_w_r, small_w_u), (105, 0.95, 0.6)) for h in (1, 4)]


def test_a_window_below_the_paragraph_that_kills_ictr_reads_as_reproduced():
    text = only(window_heads(small_w_r=0.02))
    assert text.startswith("Finding 3 (reproduced")
    assert "W = 4 < L + 1 = 13 gives R 0.02" in text and "largest W = 105 gives R 0.95" in text
    assert FLAG not in text


def test_a_window_below_the_paragraph_that_still_repeats_is_flagged_with_its_reach():
    text = only(window_heads(small_w_r=0.9, small_w_u=0.6))
    assert text.startswith("Finding 3 (not reproduced")
    assert FLAG in text and "W = 4 is shorter than a paragraph plus separator (13 tokens) yet repeats R topics" in text
    assert "its 2 layers see 6 tokens back" in text  # mini: 2 layers × (W − 1)


def test_a_window_below_the_paragraph_that_keeps_r_but_loses_u_is_partly_reproduced():
    points = window_heads(small_w_r=0.0)
    points[0] = pt({"model.window": 4, "model.n_heads": 1}, R=0.7, U=0.02, C=0.02)
    text = only(points)
    assert text.startswith("Finding 3 (partly reproduced")
    assert "yet repeats R topics (ICTR_R 0.70, only ICTR_U 0.02) at H = 1" in text


def test_heads_that_matter_at_the_largest_window_are_flagged():
    points = window_heads(small_w_r=0.0)
    points[3] = pt({"model.window": 105, "model.n_heads": 4}, R=0.95, U=0.1, C=0.1)  # H = 4 loses U
    text = only(points)
    assert FLAG + "the number of heads matters at W = 105" in text and "0.50 on U" in text
    assert "W = 4 is shorter" not in text  # the window part still holds


# ---------------------------------------------------------------- finding 2: phases over r_R


def phases(mini_first, tiny_first):
    """Both sizes: underfit at r_R = 0.05, then overfit, then generalise from ``*_first`` on."""
    out = []
    for size, first in (("tiny", tiny_first), ("mini", mini_first)):
        for r in (0.05, 0.15, 0.4, 0.8):
            R = 0.1 if r == 0.05 else 0.9
            U = 0.7 if first is not None and r >= first else 0.1
            out.append(pt({"model.size": size, "world.r_repeat": r}, R=R, U=U, size=size))
    return out


def test_phases_in_order_and_the_larger_model_first_read_as_the_seed_says():
    text = only(phases(mini_first=0.4, tiny_first=0.8))
    assert text.startswith("Finding 2 (reproduced")
    assert "size = mini: underfit at r_R = 0.05 (R 0.10, U 0.10) → overfit at r_R = 0.15" in text
    assert "first generalising r_R: tiny 0.8, mini 0.4" in text
    assert FLAG not in text


def test_a_smaller_model_generalising_first_or_a_model_that_never_does_is_flagged():
    text = only(phases(mini_first=0.8, tiny_first=0.4))
    assert text.startswith("Finding 2 (not reproduced")
    assert FLAG + "the larger model mini generalises later than tiny" in text
    text = only(phases(mini_first=None, tiny_first=0.4))
    assert FLAG + "size = mini never generalises" in text


def test_a_phase_that_goes_back_as_r_grows_is_flagged():
    points = [pt({"world.r_repeat": r}, R=R, U=U) for r, R, U in ((0.1, 0.9, 0.1), (0.5, 0.9, 0.8), (0.9, 0.2, 0.0))]
    assert FLAG + "the model goes back from generalise to underfit as r_R grows to 0.9" in only(points)


def test_a_grid_without_the_underfit_phase_is_only_partly_reproduced():
    points = [pt({"world.r_repeat": r}, R=0.9, U=U) for r, U in ((0.05, 0.0), (0.8, 0.9))]
    text = only(points)
    assert text.startswith("Finding 2 (partly reproduced")
    assert FLAG + "no trial underfits: R topics are repeated already at the smallest r_R = 0.05" in text


# ---------------------------------------------------------------- finding 4: γ


def test_gamma_that_lowers_both_sets_alike_reads_as_reproduced_and_a_moving_gap_is_flagged():
    alike = [pt({"world.gamma": g}, R=R, U=R - 0.3) for g, R in ((0.1, 0.95), (0.5, 0.8), (1.0, 0.6))]
    text = only(alike)
    assert text.startswith("Finding 4 (reproduced") and "the gap R − U spans 0.00" in text and FLAG not in text
    moving = [pt({"world.gamma": g}, R=R, U=U) for g, R, U in ((0.1, 0.95, 0.9), (0.5, 0.8, 0.4), (1.0, 0.6, 0.0))]
    text = only(moving)
    assert text.startswith("Finding 4 (not reproduced")
    assert FLAG + "the gap between R and U moves with γ" in text and "spans 0.55" in text
    flat = [pt({"world.gamma": g}, R=0.9, U=0.5) for g in (0.1, 1.0)]
    assert FLAG + "γ hardly changes the difficulty" in only(flat)


def test_gamma_at_which_nothing_is_repeated_is_left_out_of_the_gap_and_makes_it_partly_reproduced():
    points = [pt({"world.gamma": g}, R=R, U=U) for g, R, U in ((0.1, 0.95, 0.6), (0.5, 0.9, 0.6), (1.0, 0.03, 0.03))]
    text = only(points)
    assert text.startswith("Finding 4 (partly reproduced")
    assert "where R topics are repeated (γ = 0.1, 0.5) the gap R − U spans 0.05" in text
    assert FLAG + "at γ = 1.0 the model no longer repeats R topics (ICTR_R 0.03) and the gap closes with it (+0.00)" \
        in text


# ---------------------------------------------------------------- finding 5: ICTR against k


def curve(values):
    return {s: list(zip((1, 3, 7), values)) for s in ("R", "C", "U")}


def test_larger_windows_that_converge_sooner_and_higher_read_as_reproduced():
    points = [pt({"model.window": 16}, R=0.5, U=0.3, by_k=curve((0.1, 0.3, 0.5))),
              pt({"model.window": 105}, R=0.9, U=0.6, by_k=curve((0.2, 0.75, 0.8)))]
    text = only(points)
    assert text.startswith("Finding 5 (reproduced")
    assert "W = 105: 0.20 at k = 1 → 0.80 at k = 7, 90% of its best by k = 3" in text
    assert "W = 16: 0.10 at k = 1 → 0.50 at k = 7, 90% of its best by k = 7" in text


def test_a_larger_model_that_ends_lower_or_a_flat_curve_is_flagged():
    points = [pt({"model.size": "tiny"}, R=0.9, U=0.6, size="tiny", by_k=curve((0.2, 0.75, 0.8))),
              pt({"model.size": "mini"}, R=0.5, U=0.3, by_k=curve((0.5, 0.5, 0.5)))]
    text = only(points)
    assert text.startswith("Finding 5 (not reproduced")
    assert FLAG + "ICTR does not rise with k for size = mini" in text
    assert FLAG + "the larger size = mini against tiny ends lower (0.50 against 0.80)" in text


def test_a_larger_window_that_ends_higher_but_later_is_partly_reproduced():
    points = [pt({"model.window": 16}, R=0.9, U=0.5, by_k=curve((0.3, 0.62, 0.64))),
              pt({"model.window": 105}, R=0.9, U=0.6, by_k=curve((0.25, 0.55, 0.76)))]
    text = only(points)
    assert text.startswith("Finding 5 (partly reproduced")
    assert "Holds: the larger W = 105 against 16 ends no lower (0.76 against 0.64)." in text
    assert FLAG + "the larger W = 105 against 16 needs more shots (7 against 3)" in text


def test_the_axes_choose_the_finding():
    assert findings_text([pt({"seed": s}, R=0.9, U=0.5) for s in (0, 1)]) == []
    # W ∈ {16, 105} never goes below a paragraph: the window speaks to finding 5, not 3
    points = [pt({"model.window": w}, R=0.9, U=0.5, by_k=curve((0.2, 0.5, 0.6))) for w in (16, 105)]
    assert only(points).startswith("Finding 5")


def test_the_axis_figure_has_a_panel_per_group_and_marks_the_paragraph():
    panels = {f"H = {h}": [(w, {"R": 0.9, "C": 0.5, "U": 0.4}, {"R": 1.0, "C": 0.0, "U": 0.0})
                                 for w in (105, 4, 16)] for h in (1, 4)}
    fig = ictr_against(panels, "attention window W", mark_below=13)
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["H = 1", "H = 4"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["4", "16", "105"]  # sorted, evenly spaced
    assert [line.get_xdata()[0] for line in axes[0].lines if line.get_linestyle() == ":"] == [0.5]
    plt.close(fig)


# ---------------------------------------------------------------- the sweep report on fabricated run directories


def fabricated_trial(root, name, values, ictr_r):
    """A finished trial of a W × H grid: config.yaml, run.json and ICTR rows at steps 0 and 600."""
    from iclab.rows import Row
    from iclab.runs.run import Run
    from iclab.sweep.trials import TrialRecord

    config = ("world: {arity: 4, n_subtopics: 3, paragraph_len: 12, n_paragraphs: 8, gamma: 0.3, r_repeat: 0.5}\n"
              f"model: {{size: mini, window: {values['model.window']}, n_heads: {values['model.n_heads']}}}\n"
              "probe: {shots: [1, 5], report_shot: 5}\n")
    run = Run.create_at(root / name, "icg-generalization", config, {"status": "done"})
    rows = []
    for step, scale in ((0, 0.0), (600, 1.0)):
        for s, v in (("R", ictr_r), ("C", ictr_r / 2), ("U", ictr_r / 2)):
            for k in (1, 5):
                x = scale * v * (0.5 if k == 1 else 1.0)
                rows += [Row("ictr", m, val, pos=k, step=step, model="mini", label=s)
                         for m, val in (("ictr", x), ("ictr_lo", x), ("ictr_hi", x),
                                        ("bayes_ictr", 1.0 if s == "R" else 0.0))]
    run.save_rows(rows)
    return TrialRecord(name, values, str(run.path), status="done")


def test_the_sweep_report_states_finding_3_and_draws_ictr_against_w_from_the_trials(tmp_path):
    from iclab.studies.icg_generalization.sweep import sweep_report

    trials = [fabricated_trial(tmp_path, f"window={w},n_heads={h}", {"model.window": w, "model.n_heads": h},
                               0.02 if w < 13 else 0.9) for w in (4, 16, 105) for h in (1, 4)]
    saved = []

    def save_figure(fig, name):
        saved.append(name)
        plt.close(fig)
        return f"figures/{name}.png"
    sections = sweep_report(trials, save_figure)
    assert [s.heading for s in sections] == ["ICTR over the grid", "ICTR against attention window W",
                                             "ICTR against the number of shots"]  # one (M, r_R) cell: no heat map
    text = sections[0].text
    assert text.startswith("Finding 3 (reproduced") and FLAG not in text
    assert "W = 4 < L + 1 = 13 gives R 0.02, C 0.01, U 0.01" in text
    assert saved == ["sweep_ictr_by_window", "sweep_ictr_vs_k"]
