"""Collision-tree data structures: the plan notation, the per-problem output buffer, the pilot's
power-sum estimates and the planner (property-based where the input space is large)."""

from __future__ import annotations

import itertools
import math
from collections import deque

import pytest
import torch
from conftest import PEAKED, ZIPF
from hypothesis import given, settings
from hypothesis import strategies as st

from implicit_temperature.core.cost import LawPowerSums, PilotPowerSums, leaf_costs, tree_cost
from implicit_temperature.core.plan import (
    InvalidPlanError,
    format_tree,
    leaf,
    pair,
    parse_tree,
    repeat,
    resolve_plan,
)
from implicit_temperature.core.planner import plan_tree
from implicit_temperature.core.samples import Samples
from implicit_temperature.core.tree import _Buffer

leaves = st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0, 10 / 3, 1.25, 4.0]).map(leaf)
trees = st.recursive(
    leaves,
    lambda sub: st.one_of(
        st.tuples(sub, sub).map(lambda lr: pair(*lr)),
        st.tuples(st.integers(2, 5), sub).map(lambda kt: repeat(*kt)),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_notation_round_trips(tree):
    """format -> parse gives the same tree (trees are interned: the same object)."""
    text = format_tree(tree)
    again = parse_tree(text)
    assert format_tree(again) == text
    assert again.s == pytest.approx(tree.s, rel=1e-7)
    assert tree.min_draws >= tree.s - 1e-9  # every output costs at least 1/T draws


@settings(max_examples=200, deadline=None)
@given(trees)
def test_resolved_plans_reach_exactly_one_over_t(tree):
    s = tree.s * (1 + 3e-7)  # within the notation's 6 significant digits
    resolved = resolve_plan(format_tree(tree), s)
    assert resolved.s == pytest.approx(s, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(trees)
def test_tree_cost_is_symmetric_and_at_least_the_exponent(tree):
    ps = LawPowerSums(PEAKED)
    if not tree.is_leaf:
        swapped = pair(tree.right, tree.left)
        assert float(tree_cost(swapped, ps)[0]) == pytest.approx(float(tree_cost(tree, ps)[0]))
    assert float(tree_cost(tree, ps)[0]) >= tree.s - 1e-9


def test_notation_examples_and_errors():
    assert format_tree(parse_tree("(2+2)+(3+3)")) == "(2*2)+(2*3)"
    assert format_tree(parse_tree("(2+3)+(1+1.5)")) == "(2+3)+(1+1.5)"
    assert format_tree(parse_tree("2+2")) == "2*2"
    assert format_tree(parse_tree("3*2")) == "2+(2*2)"
    assert parse_tree("10/3").s == pytest.approx(10 / 3)
    assert parse_tree("2*2*2").s == 8
    for bad in ("", "2+", "(2+2", "2 2", "0.5+1.5", "2.5*3", "a+b", "1/0"):
        with pytest.raises(InvalidPlanError):
            parse_tree(bad)
    with pytest.raises(InvalidPlanError, match="add up to 1/T"):
        resolve_plan("2+2", 5.0)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 6), st.integers(0, 2**32 - 1)),
            st.tuples(st.just("pop"), st.integers(0, 3), st.integers(0, 2**32 - 1)),
        ),
        max_size=12,
    ),
)
def test_buffer_is_a_fifo_per_problem(b, ops):
    """_Buffer against one Python deque per problem: appends keep only the masked entries, in
    order; pops return the first k_b entries of each problem."""
    buf, ref, counter = _Buffer(), [deque() for _ in range(b)], itertools.count()
    for op, size, seed in ops:
        g = torch.Generator().manual_seed(seed)
        if op == "append":
            values = torch.tensor([[next(counter) for _ in range(size)] for _ in range(b)])
            keep = torch.rand(b, size, generator=g) < 0.6
            buf.append(Samples(values, "tensor"), values.unsqueeze(-1), keep)
            for row in range(b):
                ref[row].extend(values[row][keep[row]].tolist())
        elif buf.count is not None:
            have = buf.count.tolist()
            k = torch.tensor(
                [
                    min(h, int(x))
                    for h, x in zip(
                        have, torch.randint(0, size + 1, (b,), generator=g).tolist(), strict=True
                    )
                ]
            )
            if int(k.max()) == 0:
                continue
            samples, keys = buf.pop(k)
            for row in range(b):
                want = [ref[row].popleft() for _ in range(int(k[row]))]
                assert samples.data[row, : len(want)].tolist() == want
                assert keys[row, : len(want), 0].tolist() == want
        if buf.count is not None:
            assert buf.count.tolist() == [len(r) for r in ref]


def _multinomial_counts(n, k):
    """All count vectors of n draws over k outcomes."""
    for cut in itertools.combinations(range(n + k - 1), k - 1):
        bounds = (-1, *cut, n + k - 1)
        yield [bounds[i + 1] - bounds[i] - 1 for i in range(k)]


@pytest.mark.parametrize("r", [1, 2, 3])
def test_pilot_integer_power_sums_are_unbiased(r):
    """E[sum_x C(c_x, r) / C(N, r)] = S(r) exactly: enumerate every pilot of N = 6 draws from a
    3-outcome law and average the estimate with its multinomial probability."""
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    n = 6
    expectation = 0.0
    for counts in _multinomial_counts(n, 3):
        prob = math.factorial(n)
        for c, q in zip(counts, p.tolist(), strict=True):
            prob *= q**c / math.factorial(c)
        per_sample = torch.tensor([[c for c in counts for _ in range(c)]])
        est = PilotPowerSums(per_sample)
        if r <= int(est.k):
            value = float(torch.exp(est.log_int[0, r]))
        else:  # beyond the tabulated range: compute the estimator directly
            value = sum(math.comb(c, r) for c in counts) / math.comb(n, r)
        expectation += prob * value
    truth = float((p[p > 0] ** r).sum())
    assert expectation == pytest.approx(truth, rel=1e-12)


def test_pilot_estimates_at_fractional_r_lie_between_neighbours():
    keys = torch.multinomial(
        ZIPF.float(), 400, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    counts = torch.bincount(keys)[keys].unsqueeze(0)
    ps = PilotPowerSums(counts)
    log = ps.log_s(torch.tensor([2.0, 2.5, 3.0]))[0]
    assert log[0] >= log[1] >= log[2]


@pytest.mark.parametrize("temperature", [0.3, 0.25, 0.1, 0.05, 0.01])
def test_planner_beats_flat_and_simple_trees(temperature):
    ps = LawPowerSums(ZIPF)
    s = 1 / temperature
    tree, cost = plan_tree(ps, s)
    assert tree.s == pytest.approx(s, rel=1e-12)
    best = float(cost[0])
    assert best == pytest.approx(float(tree_cost(tree, ps)[0]), rel=1e-9)
    assert best <= float(leaf_costs(ps, torch.tensor([s]))[0, 0]) * (1 + 1e-9)
    halves = pair(leaf(s / 2), leaf(s / 2))
    assert best <= float(tree_cost(halves, ps)[0]) * (1 + 1e-9)


def test_planner_keeps_flat_rounds_where_no_split_pays():
    ps = LawPowerSums(ZIPF)
    for s in (1.0, 1.25, 1.9, 2.0):
        tree, _ = plan_tree(ps, s)
        assert tree.is_leaf


def test_moved_names_still_resolve_from_their_old_modules():
    """The cost formulas moved to core.cost and the planner to core.planner; the names callers
    imported from core.plan / core.cost are the same objects there."""
    from implicit_temperature.core import cost, plan, planner

    assert plan.LawPowerSums is cost.LawPowerSums
    assert plan.tree_cost is cost.tree_cost
    assert plan.plan_tree is planner.plan_tree
    assert cost.expected_exact_cost is planner.expected_exact_cost
    assert cost.choose_tree is planner.choose_tree
    with pytest.raises(AttributeError):
        plan.no_such_name  # noqa: B018
