"""VectorIndex alone: exact top-k by cosine, swap-remove, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from services.embedder.voices.index import VectorIndex


def brute_force(vectors: dict[str, np.ndarray], query: np.ndarray, k: int) -> list[str]:
    """The reference: every cosine computed in float64 and fully sorted."""
    q = query / np.linalg.norm(query)
    scored = sorted(vectors, key=lambda name: -float(vectors[name] @ q / np.linalg.norm(vectors[name])))
    return scored[:k]


def test_top_k_matches_a_full_sort_through_adds_replacements_and_removals() -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex(16)
    live: dict[str, np.ndarray] = {}
    for i in range(300):  # past several doublings of the matrix
        live[f"v{i}"] = rng.normal(size=16)
        index.add(f"v{i}", live[f"v{i}"])
    for i in range(0, 300, 3):  # holes everywhere, each filled by the last row
        assert index.remove(f"v{i}")
        del live[f"v{i}"]
    for i in range(1, 60, 3):  # a replaced vector is the new one, in place
        live[f"v{i}"] = rng.normal(size=16)
        index.add(f"v{i}", live[f"v{i}"])
    assert len(index) == len(live) == 200
    for _ in range(20):
        query = rng.normal(size=16)
        hits = index.search(query, 10)
        assert [name for name, _ in hits] == brute_force(live, query, 10)
        expected = [float(live[n] @ query / np.linalg.norm(live[n]) / np.linalg.norm(query)) for n, _ in hits]
        np.testing.assert_allclose([c for _, c in hits], expected, atol=1e-5)


def test_remove_of_an_absent_voice_changes_nothing() -> None:
    index = VectorIndex(3)
    index.add("a", np.array([1.0, 0, 0]))
    assert not index.remove("b")
    assert index.search(np.array([1.0, 0, 0]), 5) == [("a", pytest.approx(1.0))]


def test_exclude_leaves_the_query_voice_out_and_k_is_capped_by_what_is_there() -> None:
    index = VectorIndex(2)
    index.add("east", np.array([1.0, 0.0]))
    index.add("north", np.array([0.0, 2.0]))
    index.add("north-east", np.array([1.0, 1.0]))
    assert [n for n, _ in index.search(np.array([1.0, 0.0]), 100)] == ["east", "north-east", "north"]
    assert [n for n, _ in index.search(np.array([1.0, 0.0]), 100, exclude="east")] == ["north-east", "north"]
    assert [n for n, _ in index.search(np.array([1.0, 0.0]), 1, exclude="east")] == ["north-east"]
    assert VectorIndex(2).search(np.array([1.0, 0.0]), 3) == []


@pytest.mark.parametrize(
    ("vector", "says"),
    [
        (np.ones(5), "5 values, expected 4"),
        (np.zeros(4), "zero vector"),
        (np.array([1.0, np.nan, 0, 0]), "non-finite"),
    ],
)
def test_vectors_that_cannot_be_compared_are_refused(vector: np.ndarray, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        VectorIndex(4).add("x", vector)
