"""Each method's step functions, driven on hand-built states (no draw function involved)."""

import math

import pytest
import torch
from conftest import chi_square_pvalue

from implicit_temperature.core.batch import (
    SelectionState,
    batch_selection,
    finish_selection,
    init_selection,
    selection_step,
)
from implicit_temperature.core.decide import Plan, candidates, decide, decide_without_pilot
from implicit_temperature.core.errors import DrawBudgetExceeded
from implicit_temperature.core.exact import (
    RoundState,
    fill_idle,
    first_lanes,
    lane_targets,
    round_step,
    step_sizes,
)
from implicit_temperature.core.options import SampleOptions
from implicit_temperature.core.pilot import Pilot, next_pilot_size
from implicit_temperature.core.plan import leaf, parse_tree
from implicit_temperature.core.request import Request
from implicit_temperature.core.tree import node_step, pairs_to_try

L = torch.long


def _state(active, rid, k, flip, cand):
    t = lambda v: torch.tensor([v], dtype=L)  # noqa: E731 - one problem, lanes as listed
    return RoundState(t(active).bool(), t(rid), t(k), t(flip), t(cand).unsqueeze(-1))


def test_round_step_collision_stage_s2():
    # s = 2 (n = 2, a = 0): lane 0 holds candidate 5 after one draw; lane 1 holds 7; lane 2 idle
    state = _state([1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [5, 7, 0])
    y = torch.tensor([[[5], [3], [9]]])  # lane 0 matches -> accepted; lane 1 mismatches
    out = round_step(
        state, y, None, 2, 0.0, torch.tensor([2]), torch.tensor([1]), torch.tensor([2])
    )
    assert out.accept.tolist() == [[True, False, False]]
    assert out.reject.tolist() == [[False, True, False]]
    assert out.start.tolist() == [[False, False, True]]  # a new round in lane 2, id 2, cand 9
    assert out.state.active.tolist() == [[False, False, True]]
    assert out.state.rid[0, 2] == 2 and out.state.cand_keys[0, 2, 0] == 9 and out.next_id == 3


def test_round_step_bernoulli_factory():
    # s = 1.5 (n = 1, a = 0.5): every lane is in the factory at flip 1 with candidate 4
    state = _state([1, 1, 1], [0, 1, 2], [1, 1, 1], [1, 1, 1], [4, 4, 4])
    y = torch.tensor([[[4], [2], [2]]])  # heads in lane 0; tails coin in lanes 1 and 2
    coin = torch.tensor([[0.9, 0.2, 0.7]], dtype=torch.float64)  # reject iff coin * 1 < 0.5
    zero = torch.tensor([0])
    out = round_step(state, y, coin, 1, 0.5, torch.tensor([3]), zero, torch.tensor([3]))
    assert out.accept.tolist() == [[True, False, False]]
    assert out.reject.tolist() == [[False, True, False]]
    assert out.state.active.tolist() == [[False, False, True]]
    assert out.state.flip[0, 2] == 2  # the next flip rejects with probability a / 2


def test_new_round_at_s1_accepts_at_once():
    state = _state([0], [0], [0], [0], [0])
    one = torch.tensor([1])
    out = round_step(state, torch.tensor([[[6]]]), None, 1, 0.0, torch.tensor([0]), one, one)
    assert out.accept.tolist() == [[True]] and out.state.rid[0, 0] == 1


def test_lane_sizing():
    assert first_lanes(10, None, 4).item() == 4
    assert first_lanes(torch.tensor([3, 0]), 0.25, 100).tolist() == [6, 0]  # 0.5 * 3 / 0.25
    # 8 outputs missing, 2 of 3 finished rounds accepted plus 2 running: rate (2+2+1)/(3+2+1)
    want = lane_targets(
        torch.tensor([2, 5]), torch.tensor([3, 9]), torch.tensor([2, 0]), torch.tensor([10, 5]), 64
    )
    assert want.tolist() == [math.ceil(0.5 * 8 / (5 / 6)) - 2, 0]
    sizes = step_sizes(torch.tensor([2, 0]), want, True, 2)
    assert sizes == (want[0].item() + 2, 2, 1, 1)
    assert fill_idle(
        torch.tensor([1, 0]), torch.tensor([1, 0]), torch.tensor([3, 0]), 5, True
    ).tolist() == [4, 0]


def test_pairs_to_try():
    short = torch.tensor([40, 3, 0, 5])
    none = torch.zeros(4, dtype=torch.long)
    # before any pair: exactly what is missing (it cannot overshoot)
    assert pairs_to_try(short, none, none).tolist() == [40, 3, 0, 5]
    # 99 kept of 999 tried: k = 100, rho_hi = (100 + 2 * 10) / 1000 = 0.12
    tried, kept = torch.full((4,), 999), torch.full((4,), 99)
    assert pairs_to_try(short, tried, kept).tolist() == [334, 25, 0, 42]
    # 1 kept of 9 tried: rho_hi = (2 + 2 sqrt 2) / 10 = 0.48; 40 / 0.48 = 84 is capped at
    # max(short, 4 * 9) = 40, while 3 / 0.48 and 5 / 0.48 are not
    assert pairs_to_try(short, torch.full((4,), 9), torch.ones(4, dtype=torch.long)).tolist() == [
        40,
        7,
        0,
        11,
    ]
    # 0 kept of 3 tried: k = 1, rho_hi = (1 + 2) / 4 = 0.75; 40 / 0.75 = 54 is capped at
    # max(short, 4 * 3) = 40
    assert pairs_to_try(short, torch.full((4,), 3), none).tolist() == [40, 4, 0, 7]


def _request(t=0.25, **kw):
    return Request.make(t, SampleOptions(**kw), batched=False, key_name=None)


def _pilot(cost, draws=16, total=16, tree="2+2"):
    return Pilot(
        parse_tree(tree), torch.tensor([cost], dtype=torch.float64), {}, {}, draws, total, 1, 1
    )


def test_decide_prefers_exact_within_its_allowance_else_batch():
    req = _request(num_samples=100, num_outputs=1)
    plan = decide(_pilot(500.0), req)  # 500 <= 10 x 100
    assert isinstance(plan, Plan) and plan.method == "exact" and plan.expected_draws == 500.0
    assert "<= 10 x the batch method's 100 draws" in plan.reason
    plan = decide(_pilot(5000.0), req)
    assert plan.method == "batch" and plan.num_samples == 100 and plan.tree is None
    assert "> 10 x" in plan.reason and plan.expected_draws == 100.0  # the batch plan's draws
    assert [c.method for c in candidates(_pilot(5000.0), req)] == ["exact", "batch"]


def test_decide_with_a_budget_and_when_nothing_fits():
    req = _request(num_samples=100, max_draws=1016)
    assert decide(_pilot(400.0), req).method == "exact"  # <= 0.5 x 1000 left
    assert decide(_pilot(600.0), req).method == "batch"
    with pytest.raises(DrawBudgetExceeded, match="neither method fits"):
        decide(_pilot(600.0, total=950), req)  # 66 left: batch needs 100


def test_decide_without_pilot():
    none = Pilot(None)
    assert decide_without_pilot(_request(2.0), 1, none).method == "batch"
    plan = decide_without_pilot(_request(1.0, num_outputs=3), 1, Pilot(leaf(1.0)))
    assert plan.method == "exact" and plan.tree == leaf(1.0) and plan.expected_draws == 3.0
    assert decide_without_pilot(_request(0.25), 1, none) is None  # needs a pilot
    tiny = decide_without_pilot(_request(1e-4, num_samples=10), 1, none)
    assert tiny.method == "batch" and "1/T" in tiny.reason


def test_pilot_growth():
    assert next_pilot_size(16, 200, 10_000.0, 1) == 200  # 5% of 10k = 500, capped at 200
    assert next_pilot_size(16, 200, 400.0, 1) is None  # 20 < 2 x 16: stop
    assert next_pilot_size(200, 200, math.inf, 1) is None


def _selection_state(log_w):
    log_w = torch.tensor(log_w, dtype=torch.float64)
    b, n = log_w.shape
    counts = torch.ones(b, n, dtype=L)
    return SelectionState(counts, log_w, torch.full((b,), 2.0, dtype=torch.float64), counts[:, 0])


def test_selection_step_is_gumbel_max_given_uniforms():
    # row 0: sample 2 alone can be picked; row 1: u decides between two equal weights
    state = _selection_state([[-math.inf, -math.inf, 0.0], [0.0, 0.0, -math.inf]])
    u = torch.tensor([[0.99, 0.99, 0.01], [0.2, 0.8, 0.999]], dtype=torch.float64)
    assert selection_step(state, u).tolist() == [2, 1]  # larger u, larger Gumbel
    u = torch.tensor([[0.5, 0.5, 0.5], [0.8, 0.2, 0.999]], dtype=torch.float64)
    assert selection_step(state, u).tolist() == [2, 0]
    sel = finish_selection(state, selection_step(state, u))
    assert sel.index.tolist() == [2, 0] and sel.level is state.level and sel.depth is state.depth


def test_selection_step_picks_with_the_softmax_of_the_log_weights():
    # 20,000 rows of one hand-built state, weights 1 : 2 : 4 : 0 (-inf)
    log_w = [math.log(1.0), math.log(2.0), math.log(4.0), -math.inf]
    rows = 20_000
    state = _selection_state([log_w] * rows)
    u = torch.rand(rows, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    picks = selection_step(state, u)
    target = torch.tensor([1.0, 2.0, 4.0, 0.0], dtype=torch.float64) / 7.0
    assert chi_square_pvalue(picks, target) > 1e-3


def test_init_selection_weights_are_the_batch_rule():
    # s = 2 on counts 3, 3, 3, 1: outcome A (3 copies) has weight C(3, 2) = 3 per outcome,
    # 1 per copy; the singleton does not qualify (c <= s - 1)
    keys = torch.tensor([[1, 1, 1, 9]])
    state = init_selection(keys, 0.5)
    assert state.counts.tolist() == [[3, 3, 3, 1]]
    assert torch.softmax(state.log_w, 1)[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    assert state.level.tolist() == [2.0] and state.depth.tolist() == [0]
    # nothing qualifies at s = 5 with c_max = 3: the cascade steps down to level 3
    low = init_selection(keys, 0.2)
    assert low.level.tolist() == [3.0] and low.depth.tolist() == [2]
    # batch_selection is init, step on the generator's uniforms, finish
    sel = batch_selection(keys, 0.5, generator=3)
    assert sel.index.item() in (0, 1, 2) and sel.counts.tolist() == [[3, 3, 3, 1]]


def test_node_step_keeps_colliding_pairs_among_those_tried():
    """A tree node's round on hand-built child keys: a pair is kept when its two keys agree,
    only among the first want[b] pairs of problem b; the counts add up over rounds."""
    left = torch.tensor([[[1], [2], [3]], [[4], [4], [5]]])
    right = torch.tensor([[[1], [0], [3]], [[4], [4], [5]]])
    want = torch.tensor([3, 2])
    keep, counts = node_step(None, left, right, want)
    assert keep.tolist() == [[True, False, True], [True, True, False]]  # pair (5, 5) not tried
    assert counts.pairs.tolist() == [3, 2] and counts.kept.tolist() == [2, 2]
    keep, counts = node_step(counts, left, right, torch.tensor([1, 0]))
    assert keep.tolist() == [[True, False, False], [False, False, False]]
    assert counts.pairs.tolist() == [4, 2] and counts.kept.tolist() == [3, 2]
    # multi-column keys (d = 2) agree only when every column does
    two = torch.tensor([[[1, 2], [1, 3]]])
    keep, _ = node_step(None, two, torch.tensor([[[1, 2], [1, 2]]]), torch.tensor([2]))
    assert keep.tolist() == [[True, False]]
