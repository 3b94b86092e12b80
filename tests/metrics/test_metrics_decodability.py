"""Tests of task decodability (spec task_vectors.md, task decodability).

Known answers: a 6-point 1-D case whose leave-one-out votes are enumerated by hand,
well-separated clusters (TD = 1), uninformative features (TD ≈ chance), and a
brute-force Python loop on random data.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from iclab.metrics import decodability
from iclab.metrics.decodability import DecodabilityProfile, loo_knn_predict, task_decodability, td_profile

# 1-D points and labels of the hand case
X = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 13.0])[:, None]
Z = np.array(["a", "a", "b", "b", "b", "a"])


def test_no_torch_import():
    tree = ast.parse(Path(decodability.__file__).read_text())
    names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "torch"]


def test_hand_case_k2():
    # point (x, z): voters nearest first -> vote
    # 0 (0, a): 1 a (d 1), 2 b (d 2)          -> tie, nearest voter a -> a  right
    # 1 (1, a): 0 a (d 1), 2 b (d 1)          -> distances tie, index 0 first; vote tie -> a  right
    # 2 (2, b): 1 a (d 1), 0 a (d 2)          -> a  wrong
    # 3 (10, b): 4 b (d 1), 5 a (d 3)         -> tie -> b  right
    # 4 (11, b): 3 b (d 1), 5 a (d 2)         -> tie -> b  right
    # 5 (13, a): 4 b (d 2), 3 b (d 3)         -> b  wrong
    assert loo_knn_predict(X, Z, k=2).tolist() == ["a", "a", "a", "b", "b", "b"]
    mean, per = task_decodability(X, Z, k=2)
    assert per == {"a": pytest.approx(2 / 3), "b": pytest.approx(2 / 3)}
    assert mean == pytest.approx(2 / 3)


def test_hand_case_k3():
    # 0: 1 a, 2 b, 3 b -> b wrong;  1: 0 a, 2 b, 3 b -> b wrong;  2: 1 a, 0 a, 3 b -> a wrong
    # 3: 4 b, 5 a, 2 b -> b right;  4: 3 b, 5 a, 2 b -> b right;  5: 4 b, 3 b, 2 b -> b wrong
    assert loo_knn_predict(X, Z, k=3).tolist() == ["b", "b", "a", "b", "b", "b"]
    mean, per = task_decodability(X, Z, k=3)
    assert per == {"a": 0.0, "b": pytest.approx(2 / 3)}
    assert mean == pytest.approx(1 / 3)  # the mean over tasks, not the overall share 2/6


def test_vote_ties_do_not_favour_a_label_name():
    ints = (Z == "b").astype(int)  # a -> 0, b -> 1
    swapped = 1 - ints  # a -> 1, b -> 0
    np.testing.assert_array_equal(loo_knn_predict(X, ints, k=2) == ints, loo_knn_predict(X, swapped, k=2) == swapped)
    # a smallest-label rule would send the tied votes of points 0, 1, 3 and 4 all to label 0
    assert task_decodability(X, ints, k=2)[1] == {0: pytest.approx(2 / 3), 1: pytest.approx(2 / 3)}


def test_well_separated_clusters_are_fully_decodable():
    rng = np.random.default_rng(0)
    centres = 100.0 * np.eye(5, 32)
    z = np.repeat(np.arange(5), 40)
    H = centres[z] + rng.standard_normal((200, 32))
    mean, per = task_decodability(H, z)
    assert mean == 1.0 and per == {t: 1.0 for t in range(5)}


def test_uninformative_features_give_chance():
    rng = np.random.default_rng(1)
    z = rng.permutation(np.repeat(np.arange(4), 100))
    mean, _ = task_decodability(rng.standard_normal((400, 8)), z)
    assert abs(mean - 0.25) < 0.08
    # identical points: every distance is 0, so votes come from index order, not from z
    mean, per = task_decodability(np.zeros((400, 8)), z)
    assert abs(mean - 0.25) < 0.08


def test_matches_brute_force_on_random_data():
    rng = np.random.default_rng(2)
    H = rng.standard_normal((90, 5))
    z = rng.integers(0, 3, size=90)
    H[z == 1] += 1.0
    k = 7
    expected = []
    for j in range(90):
        others = [m for m in range(90) if m != j]
        dist = [float(np.sum((H[m] - H[j]) ** 2)) for m in others]
        voters = [others[i] for i in sorted(range(89), key=lambda i: (dist[i], others[i]))[:k]]
        counts = {t: sum(z[m] == t for m in voters) for t in range(3)}
        top = max(counts.values())
        expected.append(next(z[m] for m in voters if counts[z[m]] == top))
    np.testing.assert_array_equal(loo_knn_predict(H, z, k), expected)
    mean, per = task_decodability(H, z, k)
    right = np.array(expected) == z
    assert per == {t: pytest.approx(right[z == t].mean()) for t in range(3)}


def test_chunks_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(3)
    H, z = rng.standard_normal((50, 3)), rng.integers(0, 2, size=50)
    full = loo_knn_predict(H, z, 5)
    monkeypatch.setattr(decodability, "_CHUNK", 7)
    np.testing.assert_array_equal(loo_knn_predict(H, z, 5), full)


def test_profile_over_layers():
    rng = np.random.default_rng(4)
    z = np.repeat(np.arange(3), 30)
    noise = rng.standard_normal((90, 6))
    layers = np.stack([noise, noise + 50.0 * np.eye(3, 6)[z], noise + 2.0 * np.eye(3, 6)[z]])  # (layers, n, d)
    prof = td_profile(layers, z, k=10)
    assert isinstance(prof, DecodabilityProfile)
    assert prof.layers == (0, 1, 2) and prof.mean.shape == (3,) and prof.k == 10
    assert prof.best_layer == 1 and prof.best == 1.0
    assert prof.mean[0] < 0.6 and prof.mean[0] < prof.mean[2] < 1.0
    for t in range(3):
        assert prof.per_task[t].shape == (3,)
        assert prof.per_task[t][1] == 1.0
    np.testing.assert_allclose(np.mean([prof.per_task[t] for t in range(3)], axis=0), prof.mean)
    by_name = td_profile({"blocks.3": layers[2], "blocks.5": layers[1]}, z, k=10)
    assert by_name.layers == ("blocks.3", "blocks.5") and by_name.best_layer == "blocks.5"
    assert by_name.mean[0] == prof.mean[2]


@pytest.mark.parametrize("H,z,k,match", [
    (np.zeros((5, 2)), np.zeros(5), 5, "k"),
    (np.zeros((5, 2)), np.zeros(5), 0, "k"),
    (np.zeros((5, 2)), np.zeros(5), 2.5, "k"),
    (np.zeros((5, 2)), np.zeros(4), 2, "z"),
    (np.zeros(5), np.zeros(5), 2, "H"),
    (np.full((5, 2), np.nan), np.zeros(5), 2, "H"),
])
def test_bad_inputs_raise(H, z, k, match):
    with pytest.raises(ValueError, match=match):
        task_decodability(H, z, k)


def test_bad_profile_input_raises():
    with pytest.raises(ValueError, match="H_layers"):
        td_profile(np.zeros((5, 2)), np.zeros(5), 2)
    with pytest.raises(ValueError, match="H_layers"):
        td_profile({}, np.zeros(5), 2)
