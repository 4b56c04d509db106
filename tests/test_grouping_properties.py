"""Property-based tests: key counting and batch selection against a plain Python reference.

Keys are random int64 rows of any range (the extremes -2**63 and 2**63 - 1 included, which made
the packed code's column span wrap around int64) and any width d. ``group_counts`` must agree
with ``collections.Counter`` and ``selection_probabilities`` with the generalised-binomial rule
restated in plain Python, on every one of the CPU code paths (dense table, one sort of a packed
code, lexicographic sort).
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import implicit_temperature as it
from implicit_temperature.core import grouping

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXTREMES = [INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]

values = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from(EXTREMES),
    st.integers(-3, 3),  # small ranges: the dense-table path
)


@st.composite
def key_batches(draw) -> list[list[tuple[int, ...]]]:
    """B problems of N rows of d int64 values, rows drawn from a small alphabet (collisions)."""
    b = draw(st.integers(1, 3))
    n = draw(st.integers(1, 24))
    d = draw(st.integers(1, 4))
    alphabet = draw(st.lists(st.tuples(*[values] * d), min_size=1, max_size=6, unique=True))
    pick = st.integers(0, len(alphabet) - 1)
    return [[alphabet[draw(pick)] for _ in range(n)] for _ in range(b)]


PROPERTY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI is reproducible)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(params=["auto", "lexicographic"])
def path(request, monkeypatch):
    """'auto': the CPU fast paths (packed code, dense table); 'lexicographic': packing disabled,
    so every width goes through the column-by-column sort used on accelerators."""
    if request.param == "lexicographic":
        monkeypatch.setattr(grouping, "_pack_columns", lambda keys: None)
    return request.param


@PROPERTY
@given(batch=key_batches())
def test_group_counts_match_counter(path, batch):
    keys = torch.tensor(batch, dtype=torch.long)
    counts, group = grouping.group_counts(keys)
    for b, rows in enumerate(batch):
        ref = Counter(rows)
        assert counts[b].tolist() == [ref[r] for r in rows]
        labels = group[b].tolist()
        for i, ri in enumerate(rows):
            for j, rj in enumerate(rows):
                assert (labels[i] == labels[j]) == (ri == rj)


def reference_probabilities(rows: list[tuple[int, ...]], s: float) -> list[float]:
    """The batch rule in plain Python: outcome x gets C(c_x, level) (generalised binomial) where
    level = s - k for the smallest k >= 0 at which some c_x > level - 1; a member of the chosen
    outcome uniformly."""
    counts = Counter(rows)
    k = 0
    while not any(c > s - k - 1 for c in counts.values()):
        k += 1
    level = s - k
    weight = {
        x: math.exp(math.lgamma(c + 1) - math.lgamma(level + 1) - math.lgamma(c - level + 1))
        for x, c in counts.items()
        if c > level - 1
    }
    total = sum(weight.values())
    return [weight.get(x, 0.0) / total / counts[x] for x in rows]


@PROPERTY
@given(batch=key_batches(), temperature=st.sampled_from([0.25, 1 / 3, 0.37, 0.5, 1.0, 2.0]))
def test_selection_probabilities_match_reference(path, batch, temperature):
    keys = torch.tensor(batch, dtype=torch.long)
    got = it.selection_probabilities(keys, temperature)
    s = 1.0 / temperature if temperature != 1 / 3 else 3.0
    for b, rows in enumerate(batch):
        expected = torch.tensor(reference_probabilities(rows, s), dtype=torch.float64)
        torch.testing.assert_close(got[b], expected, rtol=1e-9, atol=1e-12)


def test_crafted_rows_of_width_two_are_not_merged():
    """Two column spans of 2**64 wrapped to 0 in int64: four distinct rows were counted as one
    outcome of 4 (the issue's example); each is an outcome of 2."""
    rows = [(INT64_MIN, 0), (INT64_MAX, 0), (INT64_MIN, 1), (INT64_MAX, 1)] * 2
    counts, _ = grouping.group_counts(torch.tensor([rows]))
    assert counts.tolist() == [[2] * 8]


def test_64_bit_hash_keys_and_signed_floats_work_end_to_end():
    keys = torch.tensor([[hash(("a", i % 3)) for i in range(30)]])
    counts, _ = grouping.group_counts(keys.unsqueeze(-1))
    assert counts.tolist() == [[10] * 30]
    assert 0 <= int(it.select_from_batch(keys, 0.5, 0)[0]) < 30
    signs = lambda m, generator=None: torch.tensor([1.0, -1.0], dtype=torch.float64)[  # noqa: E731
        torch.randint(2, (m,), generator=generator)
    ]
    res = it.temperature_sample(signs, 0.5, method="batch", num_outputs=4, generator=0)
    assert set(res.samples.tolist()) <= {1.0, -1.0}
