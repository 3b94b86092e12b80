"""Which demonstrations each query gets, and in what order, as text prompts.

For a query q of a labelled set, the pool is every other example. ``ranked(method)`` gives
the pool's indices in the method's order, the k chosen ones at the end, most similar last:

- ``random``: a uniform random permutation (the first k drawn; nested over k).
- ``knn``: the k nearest by cosine similarity of sentence embeddings (Liu et al., "What
  Makes Good In-Context Examples for GPT-3?", DeeLIO 2022), most similar next to the query.
- ``bm25``: the k highest BM25 scores of the query's words against each example's words
  (:class:`iclab.metrics.retrieval.BM25`, the corpus being the whole set).

Orders of the k chosen demonstrations: ``ranked`` (as above; for random, the order drawn),
``reversed`` (most similar first, for knn and bm25), and ``perm<p>`` (a uniform random
permutation per query and p, the order sensitivity of Lu et al., "Fantastically Ordered
Prompts and Where to Find Them", ACL 2022).
"""

from __future__ import annotations

import numpy as np

from iclab.metrics.retrieval import BM25, cosine_similarities, top_k, words
from iclab.studies.labelled_data import Case
from iclab.tasks.labelled import SEPARATOR, LabelledSet, format_example

RANKED, REVERSED = "ranked", "reversed"
ZERO_SHOT = "zero-shot"


def group_label(task: str, method: str, order: str = RANKED) -> str:
    return f"{task}/{method}/{order}"


def split_group(label: str) -> tuple[str, str, str]:
    task, method, order = label.rsplit("/", 2)
    return task, method, order


class Selector:
    """The demonstrations of every query of one set (module docstring).

    Parameters
    ----------
    s : LabelledSet
    embeddings : ndarray of shape (n, d) or None
        One row per example of ``s`` (needed by knn).
    k1, b : float
        BM25 parameters.
    """

    def __init__(self, s: LabelledSet, embeddings: np.ndarray | None, k1: float = 1.5, b: float = 0.75):
        self.s, self.embeddings = s, embeddings
        self.docs = [words(t) for t in s.texts]
        self.bm25 = BM25(self.docs, k1, b)

    def choose(self, method: str, q: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """The ``k`` demonstrations of query ``q`` in the method's order (most similar last), (k,)."""
        if method == "random":
            pool = np.array([i for i in range(len(self.s)) if i != q])
            return rng.permutation(pool)[:k]
        if method == "knn":
            assert self.embeddings is not None, "knn needs embeddings"
            return top_k(cosine_similarities(self.embeddings[q], self.embeddings), k, exclude=q)
        if method == "bm25":
            return top_k(self.bm25.scores(self.docs[q]), k, exclude=q)
        raise ValueError(f"unknown method {method!r}")

    def case(self, demos: np.ndarray, q: int, group: str) -> Case:
        s = self.s
        parts = [format_example(s, s.texts[i], s.label_names[s.labels[i]]) for i in demos]
        text = SEPARATOR.join([*parts, format_example(s, s.texts[q], None)])
        return Case(text, s.label_names, {"accuracy": s.labels[q]}, group)

    def label_match(self, demos: np.ndarray, q: int) -> float:
        """The share of ``demos`` whose label is the query's."""
        return float(np.mean([self.s.labels[i] == self.s.labels[q] for i in demos]))
