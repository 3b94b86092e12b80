"""Head ablation: the ICL score with chosen heads' outputs removed.

Ablating head ``h`` of layer ``l`` replaces its ``z`` (the input of the output projection,
``blocks.{l}.attn.hook_z``) by zero, or by its mean over the prompts ("mean ablation",
which keeps the head's average contribution and removes only its information).
The ablated ICL score is compared with the intact one: the share of the ICL score that
the heads carry is ``1 - ablated / intact``.
"""

from __future__ import annotations

from typing import ClassVar, Literal


from iclab.models.capture import capture, forward_logits
from iclab.models.hooks import hooks
from iclab.models.names import act_name
from iclab.models.patch import AblateHeads
from iclab.probes.base import Probe, as_tokens
from iclab.probes.icl_score import ICLScore
from iclab.probes.result import ProbeResult
from iclab.rows import Row


class HeadAblation(Probe):
    """ICL score with ``heads`` ablated, next to the intact score.

    Parameters
    ----------
    heads : list of (layer, head)
    icl : ICLScore
        The score to measure.
    mode : {"zero", "mean"}, default "mean"
    label : str, default "ablated"
        Set on the ablated rows (e.g. "top-2 induction" or "random-2").
    """

    name: ClassVar[str] = "ablation"
    heads: list[tuple[int, int]]
    icl: ICLScore
    mode: Literal["zero", "mean"] = "mean"
    label: str = "ablated"

    def __call__(self, model, prompts) -> ProbeResult:
        tokens = as_tokens(model, prompts)
        by_layer: dict[int, list[int]] = {}
        for layer, head in self.heads:
            by_layer.setdefault(layer, []).append(head)
        names = {layer: act_name("z", layer) for layer in by_layer}
        means = {}
        if self.mode == "mean":
            cache = capture(model, tokens, list(names.values()))
            means = {layer: cache[n].mean(0) for layer, n in names.items()}  # (pos, head, d_head)
        edits = {names[layer]: AblateHeads(hs, self.mode, means.get(layer)) for layer, hs in by_layer.items()}
        intact = self.icl(model, tokens).value("icl_score")

        def ablated_forward(m, t):
            with hooks(m, edits):
                return forward_logits(m, t)

        ablated = self.icl(model, tokens, forward=ablated_forward)
        score = ablated.value("icl_score")
        rows = [Row(self.name, "icl_score_intact", intact, label=self.label),
                Row(self.name, "icl_score_ablated", score, label=self.label),
                Row(self.name, "icl_share_removed", 1 - score / intact if intact else float("nan"), label=self.label)]
        return ProbeResult(rows, {"loss_by_pos_ablated": ablated.arrays["loss_by_pos"]})
