"""Study ``induction-heads``: the induction-head phase change (Olsson et al. 2022).

Spec: ``shared/spec/mechanisms.md``, induction-heads. Train attention-only models of
each depth in ``layers`` on random tokens with a repeated segment; at each probe step,
score every head (induction, prefix-matching, previous-token, copying) on repeated
prompts and measure the in-context learning score. At the end, ablate the heads whose
induction score passes ``probe.ablate_min_score`` and measure the ICL score again.
With ``--model NAME_OR_PATH`` the same scores and ablation run on a pretrained model.

What it shows: in the 2-layer model the best induction score jumps within a narrow
window of steps, and the ICL score falls at the same time; the 1-layer model forms no
induction head; ablating the induction heads takes away most of the ICL score.

Files: ``config.py`` (what can be set), ``measure.py`` (training and probes, rows and
arrays into the run), ``report.py`` (figures and prose from the stored run),
``figures.py`` (the plots).
"""

from iclab.studies.induction_heads.config import InductionHeadsConfig, footprint
from iclab.studies.induction_heads.measure import measure
from iclab.studies.induction_heads.report import report
from iclab.studies.study import Study

STUDY = Study("induction-heads", config=InductionHeadsConfig, measure=measure, report=report, footprint=footprint)

__all__ = ["STUDY", "InductionHeadsConfig"]
