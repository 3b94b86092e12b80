"""What a sweep found for the seed's findings 2–5 (spec ``icg.md``), from its trials' own numbers.

Each trial of a sweep becomes a :class:`Point` (its grid values, its model and its ICTR); the
grid's axes decide which finding the sweep tests and so which statement is made:

- ``world.r_repeat`` varies → finding 2: the phase at each r_R (underfit: ICTR_R < 0.5;
  overfit: R repeated, ICTR_U < 0.5; generalise: ICTR_U ≥ 0.5 too), that the phases come in
  that order, that the grid shows all three (only "partly reproduced" when no trial underfits)
  and that a larger model generalises at a smaller r_R;
- ``model.n_heads`` varies, or ``model.window`` takes a value below a paragraph plus its
  separator (W < L + 1) → finding 3: ICTR at each W < L + 1 against the largest W (ICG
  present: ICTR_R ≥ 0.5; only partly killed when U topics are no longer repeated but R
  topics still are), and the spread of ICTR over H at the largest W (at most 0.15:
  H matters little);
- ``world.gamma`` varies → finding 4: the spread over γ of the level (ICTR_R + ICTR_U) / 2
  (at least 0.1: γ changes the difficulty) and of the gap ICTR_R − ICTR_U over the γ at which
  R topics are still repeated (at most 0.15: the gap does not move; a γ at which nothing is
  repeated makes it only partly reproduced);
- otherwise, when ``model.size`` or ``model.window`` varies → finding 5: the mean ICTR over
  R, C and U against k, its rise from the fewest to the most shots (at least 0.1), its value
  at the most shots and the fewest shots that reach 90% of its best; a larger model or window
  should reach it in no more shots and end no lower (0.05 of slack).

A statement that the numbers contradict is flagged with ⚠. The thresholds are fixed here,
before any run, and shared with the single run's report (0.5 as in
:func:`iclab.studies.icg_generalization.report.findings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iclab.studies.icg_generalization.config import SIZES
from iclab.worlds.icg import TOPIC_SETS

PRESENT = 0.5  # ICTR at which a topic set counts as repeated
SPREAD = 0.15  # largest spread over an axis that "matters little" / "does not move"
LEVEL = 0.1  # smallest spread of the level over γ that "changes the difficulty"
RISE = 0.1  # smallest rise of ICTR from the fewest to the most shots
SLACK = 0.05  # how much lower a larger model's final ICTR may be and still count as "no lower"
FLAG = "⚠ Contradicts the seed's finding: "

AXES = {"world.r_repeat": "r_R", "world.gamma": "γ", "model.window": "W", "model.n_heads": "H",
        "model.size": "size", "world.arity": "M", "world.n_subtopics": "K", "world.p_rep": "p_rep", "seed": "seed"}


@dataclass(frozen=True)
class Point:
    """One finished trial as the findings see it.

    ``values`` are its grid values (dotted key → value), ``ictr`` and ``bayes`` the model's
    and the Bayes-optimal ICTR per topic set at the report shot, ``by_k`` the model's ICTR
    per set as (k, ICTR) pairs in increasing k.
    """

    values: dict[str, Any]
    size: str
    paragraph_len: int
    ictr: dict[str, float]
    bayes: dict[str, float] = field(default_factory=dict)
    by_k: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return SIZES[self.size][0]


def varied(points: list[Point]) -> list[str]:
    """The grid keys that take more than one value over the points, in grid order."""
    keys = list(dict.fromkeys(k for p in points for k in p.values))
    return [k for k in keys if len({repr(p.values.get(k)) for p in points}) > 1]


def _name(key: str) -> str:
    return AXES.get(key, key.split(".")[-1])


def _label(p: Point, keys: list[str]) -> str:
    return ", ".join(f"{_name(k)} = {p.values.get(k)}" for k in keys)


def _groups(points: list[Point], keep: list[str]) -> dict[str, list[Point]]:
    """Points grouped by the values of ``keep`` (label → points, in first-seen order)."""
    out: dict[str, list[Point]] = {}
    for p in points:
        out.setdefault(_label(p, keep), []).append(p)
    return out


def _sets(p: Point, *names: str) -> str:
    return ", ".join(f"{s} {p.ictr[s]:.2f}" for s in names if s in p.ictr)


def findings_text(points: list[Point]) -> list[str]:
    """One paragraph per finding that the sweep's axes test (none when no rule applies)."""
    if not points:
        return []
    axes = varied(points)
    out = []
    if "world.r_repeat" in axes:
        out.append(finding2(points, axes))
    window_below = any((p.values.get("model.window") or 10**9) < p.paragraph_len + 1 for p in points)
    if "model.n_heads" in axes or ("model.window" in axes and window_below):
        out.append(finding3(points, axes))
    if "world.gamma" in axes:
        out.append(finding4(points, axes))
    if not out and ("model.size" in axes or "model.window" in axes):
        out.append(finding5(points, axes))
    return out


def phase(p: Point) -> str:
    """underfit (R not repeated), overfit (R repeated, U not) or generalise (U repeated too)."""
    if p.ictr.get("R", 0.0) < PRESENT:
        return "underfit"
    return "generalise" if p.ictr.get("U", 0.0) >= PRESENT else "overfit"


_PHASES = ("underfit", "overfit", "generalise")


def finding2(points: list[Point], axes: list[str]) -> str:
    """Phases over r_R per model (and per any other axis); a larger model should generalise at a
    smaller r_R."""
    others = [k for k in axes if k != "world.r_repeat"]
    text, flags, first_gen = [], [], {}
    for label, pts in _groups(points, others).items():
        pts = sorted(pts, key=lambda p: p.values["world.r_repeat"])
        steps = [f"{phase(p)} at r_R = {p.values['world.r_repeat']} ({_sets(p, 'R', 'U')})" for p in pts]
        text.append(f"{label or 'the model'}: " + " → ".join(steps))
        order = [_PHASES.index(phase(p)) for p in pts]
        back = next((i for i in range(1, len(order)) if order[i] < order[i - 1]), None)
        if back is not None:
            flags.append(f"{label or 'the model'} goes back from {_PHASES[order[back - 1]]} to "
                         f"{_PHASES[order[back]]} as r_R grows to {pts[back].values['world.r_repeat']}")
        gen = [p.values["world.r_repeat"] for p in pts if phase(p) == "generalise"]
        first_gen[label] = min(gen) if gen else None
        if not gen:
            flags.append(f"{label or 'the model'} never generalises (ICTR_U < {PRESENT}) up to r_R = "
                         f"{pts[-1].values['world.r_repeat']}")
    order = " " + _size_order(points, others, first_gen, flags) if "model.size" in axes else ""
    missing = [f"no trial underfits: R topics are repeated already at the smallest r_R = "
               f"{min(p.values['world.r_repeat'] for p in points)}"] if all(phase(p) != "underfit" for p in points) else []
    verdict = "not reproduced" if flags else "partly reproduced" if missing else "reproduced"
    return (f"Finding 2 ({verdict}; phases over r_R, ICTR at the report shot): " + "; ".join(text) + "." + order
            + "".join(f" {FLAG}{f}." for f in flags + missing))


def _size_order(points: list[Point], others: list[str], first_gen: dict[str, Any], flags: list[str]) -> str:
    """Compare, between sizes that share every other axis, the smallest r_R that generalises."""
    rest = [k for k in others if k != "model.size"]
    said = []
    for label, pts in _groups(points, rest).items():
        sizes = sorted({p.size for p in pts}, key=list(SIZES).index)
        firsts = [(s, first_gen[_label(next(p for p in pts if p.size == s), others)]) for s in sizes]
        where = f" ({label})" if label else ""
        said.append("first generalising r_R" + where + ": "
                    + ", ".join(f"{s} {'never' if r is None else r}" for s, r in firsts))
        for (small, r_small), (large, r_large) in zip(firsts, firsts[1:]):
            if r_small is not None and (r_large is None or r_large > r_small):
                flags.append(f"the larger model {large} generalises later than {small}{where}")
    return "; ".join(said) + " (a larger model should generalise at a smaller r_R)."


def finding3(points: list[Point], axes: list[str]) -> str:
    """ICTR at windows below a paragraph plus separator against the largest window; spread over H.
    Only "partly reproduced" when a window below the paragraph kills the repetition of U topics but
    not of R topics."""
    parts, flags, partial = [], [], []
    if "model.window" in axes:
        others = [k for k in axes if k != "model.window"]
        for label, pts in _groups(points, others).items():
            pts = sorted(pts, key=lambda p: p.values.get("model.window") or 10**9)
            ref, L = pts[-1], pts[-1].paragraph_len
            below = [p for p in pts if (p.values.get("model.window") or 10**9) < L + 1]
            s = (f"{label + ': ' if label else ''}largest W = {ref.values.get('model.window')} gives "
                 f"{_sets(ref, *TOPIC_SETS)}")
            s += "".join(f"; W = {p.values['model.window']} < L + 1 = {L + 1} gives {_sets(p, *TOPIC_SETS)}"
                          for p in below)
            parts.append(s)
            if ref.ictr.get("R", 0.0) < PRESENT:
                flags.append(f"even the largest window does not repeat R topics{' at ' + label if label else ''} "
                             f"(ICTR_R {ref.ictr.get('R', 0.0):.2f}), so the sweep cannot show W killing ICG")
            for p in below:
                if p.ictr.get("R", 0.0) >= PRESENT:
                    W = p.values["model.window"]
                    reach = p.n_layers * (W - 1)
                    only_r = p.ictr.get("U", 0.0) < PRESENT
                    (partial if only_r else flags).append(
                        f"W = {W} is shorter than a paragraph plus separator ({L + 1} tokens) yet repeats R topics "
                        f"(ICTR_R {p.ictr['R']:.2f}{', only ICTR_U ' + format(p.ictr.get('U', 0.0), '.2f') if only_r else ''})"
                        f"{' at ' + label if label else ''}; its {p.n_layers} layers see {reach} tokens back through "
                        "stacked windows" + (", more than a paragraph" if reach >= L + 1 else ""))
    if "model.n_heads" in axes:
        at = points
        if "model.window" in axes:
            top = max(p.values.get("model.window") or 10**9 for p in points)
            at = [p for p in points if (p.values.get("model.window") or 10**9) == top]
        others = [k for k in axes if k not in ("model.n_heads", "model.window")]
        for label, pts in _groups(at, others).items():
            pts = sorted(pts, key=lambda p: p.values["model.n_heads"])
            spread = {s: max(p.ictr[s] for p in pts) - min(p.ictr[s] for p in pts) for s in ("R", "U")
                      if all(s in p.ictr for p in pts)}
            where = (f" at W = {pts[0].values['model.window']}" if "model.window" in axes else "") + \
                    (f", {label}" if label else "")
            parts.append(f"over H{where}: " + "; ".join(f"H = {p.values['model.n_heads']}: {_sets(p, 'R', 'U')}"
                                                        for p in pts)
                         + " (spread " + ", ".join(f"{s} {v:.2f}" for s, v in spread.items()) + ")")
            big = {s: v for s, v in spread.items() if v > SPREAD}
            if big:
                flags.append("the number of heads matters" + where + ": ICTR spreads by "
                             + ", ".join(f"{v:.2f} on {s}" for s, v in big.items()) + f" (more than {SPREAD})")
    verdict = "not reproduced" if flags else "partly reproduced" if partial else "reproduced"
    return (f"Finding 3 ({verdict}; ICTR at the report shot): " + "; ".join(parts) + "."
            + "".join(f" {FLAG}{f}." for f in flags + partial))


def finding4(points: list[Point], axes: list[str]) -> str:
    """Spread over γ of the level (R + U) / 2 (over every γ) and of the gap R − U (over the γ at
    which R topics are still repeated: where the model repeats nothing the gap closes with it, so
    such γ make the finding only partly reproduced, not contradicted)."""
    others = [k for k in axes if k != "world.gamma"]
    parts, flags, partial = [], [], []
    for label, pts in _groups(points, others).items():
        pts = sorted(pts, key=lambda p: p.values["world.gamma"])
        level = [(p.ictr["R"] + p.ictr["U"]) / 2 for p in pts]
        gap = {p.values["world.gamma"]: p.ictr["R"] - p.ictr["U"] for p in pts}
        live = [p for p in pts if p.ictr["R"] >= PRESENT]
        lost = [p for p in pts if p.ictr["R"] < PRESENT]
        live_gap = [gap[p.values["world.gamma"]] for p in live]
        d_level = max(level) - min(level)
        d_gap = max(live_gap) - min(live_gap) if live_gap else 0.0
        where = f" ({label})" if label else ""
        parts.append((f"{label}: " if label else "")
                     + "; ".join(f"γ = {p.values['world.gamma']}: R {p.ictr['R']:.2f}, U {p.ictr['U']:.2f} "
                                 f"(gap {gap[p.values['world.gamma']]:+.2f})" for p in pts)
                     + f" — the level (R + U) / 2 spans {d_level:.2f}"
                     + (f"; where R topics are repeated (γ = {', '.join(str(p.values['world.gamma']) for p in live)}) "
                        f"the gap R − U spans {d_gap:.2f}" if len(live) > 1 else ""))
        if d_level < LEVEL:
            flags.append(f"γ hardly changes the difficulty{where}: the level spans {d_level:.2f} < {LEVEL}")
        if len(live) < 2:
            flags.append(f"fewer than two γ{where} at which R topics are repeated: the gap cannot be compared")
        elif d_gap > SPREAD:
            flags.append(f"the gap between R and U moves with γ{where}: it spans {d_gap:.2f} > {SPREAD}, from "
                         f"{live_gap[0]:+.2f} at γ = {live[0].values['world.gamma']} to {live_gap[-1]:+.2f} at "
                         f"γ = {live[-1].values['world.gamma']}")
        if lost:
            partial.append(f"at γ = {', '.join(str(p.values['world.gamma']) for p in lost)}{where} the model no longer "
                           "repeats R topics (ICTR_R " + ", ".join(f"{p.ictr['R']:.2f}" for p in lost)
                           + ") and the gap closes with it (" + ", ".join(f"{gap[p.values['world.gamma']]:+.2f}"
                                                                        for p in lost) + ")")
    verdict = "not reproduced" if flags else "partly reproduced" if partial else "reproduced"
    return (f"Finding 4 ({verdict}; ICTR at the report shot): " + "; ".join(parts) + "."
            + "".join(f" {FLAG}{f}." for f in flags + partial))


def mean_curve(p: Point) -> list[tuple[int, float]]:
    """(k, mean over R, C, U of ICTR at k) for the ks every set was measured at."""
    sets = [s for s in TOPIC_SETS if p.by_k.get(s)]
    ks = sorted(set.intersection(*(set(k for k, _ in p.by_k[s]) for s in sets))) if sets else []
    vals = {s: dict(p.by_k[s]) for s in sets}
    return [(k, sum(vals[s][k] for s in sets) / len(sets)) for k in ks]


def converged_at(curve: list[tuple[int, float]]) -> int:
    """The fewest shots whose ICTR reaches 90% of the curve's best."""
    best = max(v for _, v in curve)
    return next(k for k, v in curve if v >= 0.9 * best)


def finding5(points: list[Point], axes: list[str]) -> str:
    """ICTR against k: the rise, the final value and the shots to converge; larger size or window
    should converge in no more shots and end no lower. Only "partly reproduced" when ICTR rises
    for every trial and some, not all, of the comparisons between sizes or windows hold."""
    keys = [k for k in axes if k in ("model.size", "model.window")]
    parts, flags, stats = [], [], {}
    for p in points:
        c = mean_curve(p)
        if len(c) < 2:
            continue
        stats[id(p)] = (c[-1][1], converged_at(c))
        parts.append(f"{_label(p, axes)}: {c[0][1]:.2f} at k = {c[0][0]} → {c[-1][1]:.2f} at k = {c[-1][0]}, "
                     f"90% of its best by k = {stats[id(p)][1]}")
        if c[-1][1] - c[0][1] < RISE:
            flags.append(f"ICTR does not rise with k for {_label(p, axes)} (by {c[-1][1] - c[0][1]:+.2f})")
    if not stats:
        return "Finding 5: the sweep measured ICTR at fewer than two shot counts; nothing to compare."
    flat = bool(flags)
    held = []
    for key in keys:
        rest = [k for k in axes if k != key]
        order = (lambda p: list(SIZES).index(p.size)) if key == "model.size" else \
            (lambda p: p.values.get("model.window") or 10**9)
        for label, pts in _groups([p for p in points if id(p) in stats], rest).items():
            pts = sorted(pts, key=order)
            for a, b in zip(pts, pts[1:]):
                (end_a, k_a), (end_b, k_b) = stats[id(a)], stats[id(b)]
                what = f"{_name(key)} = {b.values.get(key)} against {a.values.get(key)}" + (f" ({label})" if label else "")
                if end_b < end_a - SLACK:
                    flags.append(f"the larger {what} ends lower ({end_b:.2f} against {end_a:.2f})")
                else:
                    held.append(f"the larger {what} ends no lower ({end_b:.2f} against {end_a:.2f})")
                if k_b > k_a:
                    flags.append(f"the larger {what} needs more shots ({k_b} against {k_a})")
                else:
                    held.append(f"the larger {what} needs no more shots ({k_b} against {k_a})")
    verdict = ("reproduced" if not flags else "partly reproduced" if not flat and held else "not reproduced")
    return (f"Finding 5 ({verdict}; mean ICTR over R, C, U against the shots k): " + "; ".join(parts) + "."
            + (" Holds: " + "; ".join(held) + "." if held and flags else "")
            + "".join(f" {FLAG}{f}." for f in flags))
