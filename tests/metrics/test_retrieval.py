"""BM25 and cosine neighbours against answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iclab.metrics.retrieval import BM25, cosine_similarities, top_k, words


def test_words():
    assert words("The cat's 2 HATS!") == ["the", "cat", "s", "2", "hats"]


def test_bm25_matches_a_hand_computation():
    docs = [["a", "b", "a"], ["b", "c"], ["c", "c", "c", "d"]]
    bm = BM25(docs, k1=1.5, b=0.75)
    # N = 3, avgdl = 3; idf(a) = ln(1 + (3 - 1 + .5) / (1 + .5)), idf(c) = ln(1 + (3 - 2 + .5) / (2 + .5))
    idf_a, idf_c = math.log(1 + 2.5 / 1.5), math.log(1 + 1.5 / 2.5)

    def term(f, dl):
        return f * 2.5 / (f + 1.5 * (1 - 0.75 + 0.75 * dl / 3))

    expected = [idf_a * term(2, 3), idf_c * term(1, 2), idf_c * term(3, 4)]
    np.testing.assert_allclose(bm.scores(["a", "c", "zzz"]), expected, rtol=1e-12)
    np.testing.assert_allclose(bm.scores(["a", "a"]), [2 * idf_a * term(2, 3), 0, 0], rtol=1e-12)  # per occurrence


def test_top_k_is_least_similar_first_and_leaves_out_the_query():
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.7])
    assert top_k(s, 3).tolist() == [4, 3, 1]  # ties go to the lower index, which ends up last (most similar)
    assert top_k(s, 3, exclude=1).tolist() == [2, 4, 3]
    assert top_k(s, 10, exclude=0).tolist() == [2, 4, 3, 1]


def test_cosine_similarities():
    pool = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_similarities(np.array([3.0, 0.0]), pool), [1, 0, 1 / math.sqrt(2)])
    assert cosine_similarities(np.zeros(2), pool) == pytest.approx([0, 0, 0])
