"""Choosing demonstrations for a query: BM25 over words, and nearest neighbours by cosine.

**BM25** (Okapi; Robertson and Zaragoza, "The Probabilistic Relevance Framework: BM25 and
Beyond", 2009). For a query q (its words) and a document d of length |d| in a corpus of N
documents of mean length avgdl,

    score(q, d) = Σ_{w ∈ q} idf(w) · f(w, d) (k1 + 1) / (f(w, d) + k1 (1 - b + b |d| / avgdl))
    idf(w)      = ln(1 + (N - n(w) + 0.5) / (n(w) + 0.5))

with f(w, d) the count of w in d, n(w) the documents containing w, and a query word counted
once per occurrence. This idf is Lucene's, positive for every word (the classic ln((N - n +
0.5) / (n + 0.5)) is negative for words in more than half the documents). Defaults k1 = 1.5,
b = 0.75. Words are lower-cased runs of letters and digits (:func:`words`).

**k nearest neighbours** by cosine similarity of embeddings (Liu et al., "What Makes Good
In-Context Examples for GPT-3?", DeeLIO 2022): the k pool items of highest
cos(e_q, e_i) = e_q · e_i / (|e_q| |e_i|).

Both return the chosen indices **least similar first**, so that the most similar example
sits next to the query (Liu et al.'s "reversed" order).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: ``"The cat's 2 hats!"`` → ``["the", "cat", "s", "2", "hats"]``."""
    return _WORD.findall(text.lower())


class BM25:
    """BM25 scores of a query against every document of a corpus (module docstring).

    Parameters
    ----------
    corpus : sequence of list of str
        Each document's words.
    k1, b : float, default 1.5, 0.75
    """

    def __init__(self, corpus: Sequence[list[str]], k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.counts = [Counter(d) for d in corpus]
        self.lengths = np.array([len(d) for d in corpus], dtype=float)
        self.avgdl = float(self.lengths.mean()) if len(corpus) else 0.0
        df = Counter(w for c in self.counts for w in c)
        n = len(corpus)
        self.idf = {w: math.log(1 + (n - m + 0.5) / (m + 0.5)) for w, m in df.items()}

    def scores(self, query: list[str]) -> np.ndarray:
        """score(query, d) for every document d, (n_docs,)."""
        out = np.zeros(len(self.counts))
        norm = self.k1 * (1 - self.b + self.b * self.lengths / max(self.avgdl, 1e-12))  # (n_docs,)
        for w in query:
            if w not in self.idf:
                continue
            f = np.array([c.get(w, 0) for c in self.counts], dtype=float)  # (n_docs,)
            out += self.idf[w] * f * (self.k1 + 1) / (f + norm)
        return out


def top_k(scores: np.ndarray, k: int, exclude: int | None = None) -> np.ndarray:
    """The indices of the ``k`` highest ``scores`` (ties to the lower index), ``exclude`` left out,
    least similar first."""
    s = np.asarray(scores, dtype=float).copy()
    if exclude is not None:
        s[exclude] = -np.inf
    order = np.lexsort((np.arange(len(s)), -s))  # by score descending, then index ascending
    chosen = order[: min(k, len(s) - (exclude is not None))]
    return chosen[::-1].copy()


def cosine_similarities(query: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """cos(query, pool_i) for each row of ``pool`` (n, d); ``query`` (d,)."""
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    p = pool / np.maximum(np.linalg.norm(pool, axis=1, keepdims=True), 1e-12)
    return p @ q
