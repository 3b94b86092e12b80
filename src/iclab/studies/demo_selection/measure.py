"""What the demo-selection study measures: accuracy by selection method, k and order, per model."""

from __future__ import annotations

import numpy as np

from iclab.models.embed import lm_embeddings, packaged_minilm, sentence_embeddings
from iclab.probes.label_scoring import LabelScoring
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.studies.demo_selection.config import DemoSelectionConfig
from iclab.studies.demo_selection.select import (
    REVERSED,
    ZERO_SHOT,
    Selector,
    group_label,
)
from iclab.studies.labelled_data import Case, encode_cases, prompt_counts, score_models
from iclab.tasks.labelled import LabelledSet


def set_cases(s: LabelledSet, embeddings: np.ndarray | None, cfg: DemoSelectionConfig) -> tuple[dict[int, list[Case]],
                                                                                                 list[Row]]:
    """Every prompt of one set by k (zero-shot under k = 0), and the label-match rows (the share of
    chosen demonstrations that have the query's label, per method and k)."""
    sel = cfg.selection
    rng = np.random.default_rng([cfg.seed, 1, sum(map(ord, s.name))])
    queries = rng.permutation(len(s))[: min(sel.n_queries, len(s))]
    selector = Selector(s, embeddings, sel.bm25_k1, sel.bm25_b)
    ko = sel.order_k() if sel.orders else 0
    longest = max(*sel.shots, ko)
    by_k: dict[int, list[Case]] = {0: [selector.case(np.array([], dtype=int), q, group_label(s.name, ZERO_SHOT))
                                       for q in queries]}
    match = []
    for m in sel.methods:
        chosen = {q: selector.choose(m, q, longest, rng) for q in queries}  # most similar last
        for k in sorted(set(sel.shots)):
            by_k.setdefault(k, []).extend(selector.case(chosen[q][-k:], q, group_label(s.name, m)) for q in queries)
            match.append(Row("demo_selection", "label_match",
                             float(np.mean([selector.label_match(chosen[q][-k:], q) for q in queries])),
                             pos=k, label=f"{s.name}/{m}"))
        if ko:
            cases = by_k.setdefault(ko, [])
            if m != "random":
                cases.extend(selector.case(chosen[q][-ko:][::-1], q, group_label(s.name, m, REVERSED))
                             for q in queries)
            for p in range(sel.orders):
                prng = np.random.default_rng([cfg.seed, 2, p])  # permutation p, the same for every method
                cases.extend(selector.case(chosen[q][-ko:][prng.permutation(ko)], q, group_label(s.name, m, f"perm{p}"))
                             for q in queries)
    return by_k, match


def measure(cfg: DemoSelectionConfig, run: Run, model_name: str | None = None) -> None:
    """Score each model in turn (one in memory at a time) on the prompts of every set."""
    names, sets, sel = cfg.scored(model_name), cfg.data.sets(), cfg.selection
    sentence = None
    if "knn" in sel.methods and sel.encoder == "minilm":  # the same neighbours for every model
        path = sel.encoder_path or packaged_minilm()
        sentence = {s.name: sentence_embeddings(s.texts, path) for s in sets}
    probe = LabelScoring(batch_size=sel.batch_size)

    def score_set(model, tokenizer, s: LabelledSet) -> Rows:
        emb = None
        if "knn" in sel.methods:
            emb = sentence[s.name] if sentence is not None else lm_embeddings(model, tokenizer, s.texts, sel.batch_size)
        by_k, match = set_cases(s, emb, cfg)
        rows = Rows(match)
        for k, items in by_k.items():
            prompts = encode_cases(tokenizer, items, s.label_prefix)
            rows += Rows(probe(model, prompts).rows + prompt_counts(prompts)).tagged(pos=k)
        return rows

    score_models(run, names, sets, cfg.model, "demo selection", score_set)
