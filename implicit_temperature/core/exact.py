"""The exact sampler: draws from P^(1/T) for T <= 1 using only draws from P.

One round, with s = 1/T = n + a:
  stage 1 (collision, n >= 1 draws): the first draw is the candidate x; each further draw must
  equal x (early exit at the first mismatch) -> passes with probability P(x)^n;
  stage 2 (Bernoulli factory, only if a > 0): for i = 1, 2, ...: one draw, equal to x -> accept;
  else with probability a / i -> reject -> passes with probability P(x)^a.
A round accepts x with probability P(x)^(1/T), so accepted candidates are exactly P_T-distributed.

Vectorisation: many rounds run side by side as lanes of a tensor (B problems x m lanes, one
``draw(m)`` per step feeds every lane). Lanes that finish are refilled with new rounds. Rounds are
numbered in the order they start (ties broken by lane position, never by value); outputs are the
first ``num_outputs`` accepted rounds in that order, so they are i.i.d. P_T whatever the rounds'
durations: a round's outcome only depends on draws made after it started. Rounds that start after
the last needed acceptance are abandoned. The number of lanes follows the estimated acceptance
rate, so the draws spent stay close to the sequential expectation (see :mod:`.cost`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .options import DEFAULT_MAX_DRAWS_PER_OUTPUT, DEFAULT_MAX_LANES
from .rows import RowGenerators
from .samples import Samples, cat_samples
from .validation import uniform

_NONE = torch.iinfo(torch.long).max  # round id of "no accepted round"

#: Rounds kept in flight per problem, as a fraction of the expected rounds still needed
#: (outputs missing / estimated acceptance rate). 1.0 minimises draw calls; lower values waste
#: fewer draws on rounds that start after the last needed acceptance. At 0.5 the draws per
#: output stay within ~1.2x of the sequential expectation from 10 outputs per call (within
#: ~1.4x for a single output) for ~30% more calls than at 1.0 (docs/benchmarks.md).
LANE_FRACTION = 0.5
#: Largest collision length a flat round may have (2^53: beyond it float64 counts break down).
MAX_COLLISION = 2**53


@dataclass
class ExactStats:
    """Bookkeeping of one exact run (totals over the B problems)."""

    draws: int = 0
    calls: int = 0
    rounds: int = 0  # rounds started
    accepted: int = 0
    rejected: int = 0
    abandoned: int = 0
    max_lanes_used: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "model_calls": self.calls,
            "rounds": self.rounds,
            "accepted_rounds": self.accepted,
            "rejected_rounds": self.rejected,
            "abandoned_rounds": self.abandoned,
            "max_lanes_used": self.max_lanes_used,
        }


@dataclass
class ExactOutput:
    samples: Samples  # (B, Q, ...)
    keys: torch.Tensor  # (B, Q, d)
    stats: ExactStats
    #: per-row runs only: rounds accepted and finished per problem (host LongTensors (B,))
    row_tallies: tuple[torch.Tensor, torch.Tensor] | None = None


class _Lanes:
    """Per-lane round state, all (B, L): active, round id, stage-1 matches k, factory flip index
    (0 while in stage 1), the candidate's key (B, L, d) and the candidate sample."""

    NAMES = ("active", "rid", "k", "flip", "cand_keys")

    def __init__(self, y: Samples, y_keys: torch.Tensor) -> None:
        b, m = y_keys.shape[:2]
        zeros = torch.zeros(b, m, dtype=torch.long, device=y_keys.device)
        self.active = torch.zeros(b, m, dtype=torch.bool, device=y_keys.device)
        self.rid, self.k, self.flip = zeros, zeros.clone(), zeros.clone()
        self.cand_keys = torch.zeros_like(y_keys)
        self.cand = y

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        for name in self.NAMES:
            setattr(self, name, fn(getattr(self, name)))

    def compact(self) -> None:
        """Move in-progress lanes to the front of each row, keeping their order."""
        perm = torch.sort((~self.active).long(), dim=1, stable=True).indices
        rows = torch.arange(perm.shape[0], device=perm.device).unsqueeze(1)
        self._apply(lambda t: t[rows, perm])
        self.cand = self.cand.gather(perm)

    def resize(self, m: int, filler: Samples) -> None:
        """Keep the first m lanes, or append idle lanes (their candidate taken from ``filler``)."""
        b, cur = self.active.shape
        if m < cur:
            self._apply(lambda t: t[:, :m])
            self.cand = self.cand.gather(torch.arange(m, device=self.active.device).expand(b, m))
        elif m > cur:
            pad = m - cur
            self._apply(lambda t: torch.cat([t, t.new_zeros((b, pad) + tuple(t.shape[2:]))], dim=1))
            self.cand = self.cand.cat(
                filler.gather(torch.zeros(b, pad, dtype=torch.long, device=self.active.device))
            )


class _Accepted:
    """Accepted rounds per problem (round id, key, sample), stored compactly in chunks.

    Only accepted lanes are kept (memory ~ outputs, not draws); :meth:`merge` sorts by round id
    (start order) and keeps the first q per problem, padding with id ``_NONE``.
    """

    def __init__(self, q: int) -> None:
        self.q = q
        self.chunks: list[tuple[torch.Tensor, torch.Tensor, Samples]] = []

    def add(
        self, accept: torch.Tensor, rid: torch.Tensor, keys: torch.Tensor, cand: Samples, width: int
    ) -> None:
        """Store the accepted lanes (at most ``width`` per problem) of one step."""
        if width == 0:
            return
        order = torch.sort((~accept).long(), dim=1, stable=True).indices[:, :width]
        ids = torch.where(accept, rid, torch.full_like(rid, _NONE)).gather(1, order)
        d = keys.shape[-1]
        self.chunks.append(
            (ids, keys.gather(1, order.unsqueeze(-1).expand(-1, -1, d)), cand.gather(order))
        )

    def merge(self) -> tuple[torch.Tensor, torch.Tensor, Samples]:
        """(ids (B, q), keys (B, q, d), samples (B, q, ...)), sorted by round id.

        Linear in the stored outputs (up to a log factor): the chunks are joined at once (keys,
        ids) or pairwise in a balanced way (samples), never one after another.
        """
        ids = torch.cat([c[0] for c in self.chunks], 1)
        keys = torch.cat([c[1] for c in self.chunks], 1)
        samples = cat_samples([c[2] for c in self.chunks])
        if ids.shape[1] < self.q:  # pad so that every problem has q slots
            pad = self.q - ids.shape[1]
            ids = torch.cat([ids, ids.new_full((ids.shape[0], pad), _NONE)], 1)
            keys = torch.cat([keys, keys.new_zeros((keys.shape[0], pad, keys.shape[2]))], 1)
            samples = samples.cat(samples.gather(ids.new_zeros((ids.shape[0], pad))))
        order = torch.sort(ids, dim=1, stable=True).indices[:, : self.q]
        merged = (
            ids.gather(1, order),
            keys.gather(1, order.unsqueeze(-1).expand(-1, -1, keys.shape[2])),
            samples.gather(order),
        )
        self.chunks = [merged]
        return merged

    def cutoff(self, q: torch.Tensor) -> torch.Tensor:
        """Per problem, the id of the q_b-th accepted round in start order (``_NONE`` if fewer,
        -1 where q_b = 0)."""
        ids = self.merge()[0]
        at = ids.gather(1, (q - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        return torch.where(q > 0, at, torch.full_like(at, -1))


class RoundState(NamedTuple):
    """The rounds in the lanes, all (B, m): in progress (``active``), round id (start order),
    stage-1 matches ``k``, Bernoulli-factory flip index ``flip`` (0 while in stage 1) and the
    candidate's key ``cand_keys`` (B, m, d)."""

    active: torch.Tensor
    rid: torch.Tensor
    k: torch.Tensor
    flip: torch.Tensor
    cand_keys: torch.Tensor


class RoundStep(NamedTuple):
    """One step's outcome: the new state (``active`` = rounds still running), the lanes that
    accepted / rejected their round on this step, the lanes that started a round, next ids."""

    state: RoundState
    accept: torch.Tensor
    reject: torch.Tensor
    start: torch.Tensor
    next_id: torch.Tensor


def round_step(
    state: RoundState,
    y_keys: torch.Tensor,
    coin: torch.Tensor | None,
    n: int,
    a: float,
    in_prog: torch.Tensor,
    want: torch.Tensor,
    next_id: torch.Tensor,
) -> RoundStep:
    """The round update on one draw per lane (pure). ``y_keys`` (B, m, d): this step's draws;
    ``coin`` (B, m) uniforms for the factory (None when a = 0); s = n + a. Rounds in progress
    are decided on their state before the step; new rounds start in lanes [in_prog, in_prog +
    want) with this step's draw as candidate, numbered from ``next_id`` in lane order."""
    active, rid, k, flip, cand_keys = state
    m = y_keys.shape[1]
    lane = torch.arange(m, device=y_keys.device).unsqueeze(0)
    match = (y_keys == cand_keys).all(-1)
    in_stage2 = active & (flip > 0)
    in_stage1 = active & (flip == 0)
    accept = in_stage2 & match  # factory: heads
    if coin is not None:
        tails = in_stage2 & ~match & (coin * flip.clamp(min=1).double() < a)  # prob a / i
    else:
        tails = torch.zeros_like(active)
    reject = tails | (in_stage1 & ~match)  # collision stage: early exit at a mismatch
    flip = torch.where(in_stage2 & ~accept & ~tails, flip + 1, flip)
    k = torch.where(in_stage1 & match, k + 1, k)
    start = (lane >= in_prog.unsqueeze(1)) & (lane < (in_prog + want).unsqueeze(1))
    rid = torch.where(start, next_id.unsqueeze(1) + lane - in_prog.unsqueeze(1), rid)
    k = torch.where(start, torch.ones_like(k), k)
    flip = torch.where(start, torch.zeros_like(flip), flip)
    cand_keys = torch.where(start.unsqueeze(-1), y_keys, cand_keys)
    live = (active & ~accept & ~reject) | start
    done1 = live & (flip == 0) & (k >= n)  # stage 1 complete: accept, or enter the factory
    if a > 0:
        flip = torch.where(done1, torch.ones_like(flip), flip)
    else:
        accept = accept | done1
    live = live & ~accept
    new = RoundState(live, rid, k, flip, cand_keys)
    return RoundStep(new, accept, reject, start, next_id + want)


def first_lanes(
    num_outputs: int | torch.Tensor, accept_rate: torch.Tensor | float | None, max_lanes: int
) -> torch.Tensor:
    """Lanes of the first step per problem (host LongTensor, scalar or (B,)): one round per
    wanted output, or LANE_FRACTION x outputs / the prior acceptance rate; at most max_lanes."""
    q_host = torch.as_tensor(num_outputs).cpu()
    if accept_rate is None:
        return q_host.clamp(max=max_lanes).long()
    rate = torch.as_tensor(accept_rate, dtype=torch.float64).cpu().clamp(min=1e-12)
    first = torch.ceil(LANE_FRACTION * q_host.double() / rate)
    first = torch.where(q_host > 0, first.clamp(min=1), 0.0)
    return first.clamp(max=max_lanes).long()


def lane_targets(
    n_acc: torch.Tensor,
    n_fin: torch.Tensor,
    in_prog: torch.Tensor,
    q: torch.Tensor,
    max_lanes: int,
) -> torch.Tensor:
    """New rounds to start per problem (B,) (pure lane sizing): enough rounds in flight for
    LANE_FRACTION of the rounds still expected to be needed, from the measured acceptance rate.
    Rounds in progress count as possible acceptances: quick rejections arrive before slow
    acceptances and would bias the rate low."""
    need = (q - n_acc).clamp(min=0)
    z_hat = (n_acc + in_prog + 1).double() / (n_fin + in_prog + 1).double()
    target = torch.ceil(LANE_FRACTION * need.double() / z_hat).long().clamp(max=max_lanes)
    return torch.where(need > 0, (target - in_prog).clamp(min=0), torch.zeros_like(need))


class StepSizes(NamedTuple):
    """Lanes m of the next draw call and rows drawn for, with new rounds (``m``, ``rows``) or
    only the rounds in progress (``m_min``, ``rows_min``)."""

    m: int
    m_min: int
    rows: int
    rows_min: int


def step_sizes(in_prog: torch.Tensor, want: torch.Tensor, by_row: bool, b: int) -> StepSizes:
    """One host synchronisation: the next call's sizes. ``by_row``: ``draw`` takes ``active=``
    (only problems with rounds to run are drawn for), else every call draws for all B."""
    sizes = torch.stack(
        [
            (in_prog + want).max(),
            in_prog.max(),
            ((in_prog + want) > 0).sum(),
            (in_prog > 0).sum(),
        ]
    ).cpu()
    rows, rows_min = (int(sizes[2]), int(sizes[3])) if by_row else (b, b)
    return StepSizes(int(sizes[0]), int(sizes[1]), rows, rows_min)


def fill_idle(
    want: torch.Tensor, in_prog: torch.Tensor, need: torch.Tensor, m: int, by_row: bool
) -> torch.Tensor:
    """A draw call gives every problem it draws for m lanes: a problem that still lacks outputs
    starts rounds in its otherwise idle lanes, since those draws are made anyway (rounds that
    turn out not to be needed are abandoned; outputs stay the first accepted in start order)."""
    drawn = (in_prog + want) > 0 if by_row else need >= 0
    return torch.where((need > 0) & drawn, m - in_prog, want)


def _over_budget(stats: ExactStats, max_draws: int, q: torch.Tensor) -> DrawBudgetExceeded:
    if stats.accepted == 0:  # not one collision: typical of continuous samples compared exactly
        advice = (
            "not one round was accepted, which happens when every draw is a distinct outcome "
            "(continuous samples without a key or quantizer): no budget helps then; pass key= "
            '(a quantizer, e.g. a grid), or use method="batch"'
        )
    else:
        advice = 'raise max_draws, or use method="batch" (approximate, fixed cost)'
    return DrawBudgetExceeded(
        f"the exact sampler would need more than max_draws={max_draws} base draws "
        f"(spent {stats.draws}, accepted {stats.accepted} rounds for "
        f"{int(q.sum())} outputs); {advice}",
        stats.as_dict(),
    )


class _Tallies:
    """Per-problem counters (B,) of a run: outputs wanted q, accepted, finished, next round id."""

    def __init__(self, num_outputs: int | torch.Tensor, b: int, dev: torch.device) -> None:
        self.q = torch.as_tensor(num_outputs, dtype=torch.long).to(dev).expand(b).clone()
        zeros = torch.zeros(b, dtype=torch.long, device=dev)
        self.n_acc, self.n_fin, self.next_id = zeros, zeros.clone(), zeros.clone()


def _check_flat(s: float) -> tuple[int, float]:
    n = int(math.floor(s))
    if n > MAX_COLLISION:
        raise DrawBudgetExceeded(
            f"a flat round at 1/T = {s:.3g} needs {n:.3g} draws per round; that many draws are "
            'beyond any budget. Use a lower 1/T, or method="batch"',
            ExactStats().as_dict(),
        )
    return n, s - n


def run_exact(
    source: DrawSource,
    s: float,
    num_outputs: int | torch.Tensor,
    *,
    max_draws: int | torch.Tensor | None,
    max_lanes: int = DEFAULT_MAX_LANES,
    accept_rate: torch.Tensor | float | None = None,
    on_draw: Callable[[], None] | None = None,
) -> ExactOutput:
    """Run the flat rounds at exponent ``s`` = 1/T >= 1 until every problem has its outputs.

    ``num_outputs``: an int (the same for every problem) or a LongTensor (B,) of per-problem
    counts (zeros allowed: such problems draw nothing when ``draw`` takes ``active=``). Returns
    samples (B, q_max, ...) and keys (B, q_max, d); row b holds its num_outputs[b] outputs first
    (the rest is padding). ``max_draws`` bounds the base draws of ``source`` in total (draws made
    before this call, e.g. a pilot, count); before a call that would exceed it a
    :class:`DrawBudgetExceeded` carrying the statistics is raised. None means
    ``DEFAULT_MAX_DRAWS_PER_OUTPUT`` per output. ``accept_rate``: a prior guess of the acceptance
    rate per round (S(s)), scalar or (B,), used to size the first step. ``on_draw`` is called
    after every ``draw`` call (progress reporting).

    One host synchronisation per step (the next lane count and the step's tallies). With B
    problems and a ``draw`` that takes ``active=``, problems that have no round to run are left
    out of the call (see :class:`DrawSource`); otherwise every call draws for all B. The round
    update is :func:`round_step`, the lane sizing :func:`first_lanes` / :func:`lane_targets`.

    With one generator per problem (``source.per_row``) the run is :func:`run_exact_rows`:
    ``max_draws`` is then each problem's own budget (an int, or a host LongTensor (B,)).
    """
    if source.per_row:
        return run_exact_rows(source, s, num_outputs, max_draws, max_lanes, accept_rate, on_draw)
    n, a = _check_flat(s)
    q_max = int(num_outputs.max()) if isinstance(num_outputs, torch.Tensor) else int(num_outputs)
    stats, accepted = ExactStats(), _Accepted(q_max)
    assert not isinstance(max_draws, torch.Tensor)  # per-row budgets: run_exact_rows
    first = first_lanes(num_outputs, accept_rate, max_lanes)
    m, b, by_row = int(first.max()), source.num_problems or 1, source.accepts_active
    active = first > 0 if isinstance(num_outputs, torch.Tensor) and by_row else None
    if active is not None and bool(active.all()):
        active = None
    rows = int(active.sum()) if active is not None else b
    if max_draws is not None and source.draws + rows * m > max_draws:
        raise DrawBudgetExceeded(
            f"max_draws={max_draws} leaves no room for the first step's {rows * m} draws "
            f"({source.draws} already spent); raise max_draws",
            stats.as_dict(),
        )
    start_budget = source.draws
    y, y_keys = source(m, active=active) if active is not None else source(m)
    b, dev = y_keys.shape[0], y_keys.device
    tl = _Tallies(num_outputs, b, dev)
    if max_draws is None:
        max_draws = start_budget + DEFAULT_MAX_DRAWS_PER_OUTPUT * int(tl.q.sum())
    lanes, gen = _Lanes(y, y_keys), source.single_generator()
    in_prog = torch.zeros(b, dtype=torch.long, device=dev)
    want = first.to(dev).expand(b).clone()
    while True:
        if on_draw is not None:
            on_draw()
        stats.draws, stats.calls = source.draws, source.calls
        stats.max_lanes_used = max(stats.max_lanes_used, m)
        coin = uniform(tuple(y_keys.shape[:2]), gen, dev) if a > 0 else None
        _step(lanes, y, y_keys, n, a, in_prog, want, tl, accepted, stats, coin)
        lanes.compact()
        in_prog = lanes.active.sum(1)
        need = (tl.q - tl.n_acc).clamp(min=0)  # outputs each problem still lacks
        want = lane_targets(tl.n_acc, tl.n_fin, in_prog, tl.q, max_lanes)
        m, m_min, rows, rows_min = step_sizes(in_prog, want, by_row, b)
        if m == 0:
            break
        if source.draws + rows * m > max_draws:
            if m_min == 0 or source.draws + rows_min * m_min > max_draws:
                stats.draws, stats.calls = source.draws, source.calls
                raise _over_budget(stats, max_draws, tl.q)
            want, m, rows = torch.zeros_like(want), m_min, rows_min
        want = fill_idle(want, in_prog, need, m, by_row)
        if rows < b:
            y, y_keys = source(m, active=(in_prog + want) > 0)
        else:
            y, y_keys = source(m)
        lanes.resize(m, y)
    _, keys, samples = accepted.merge()
    return ExactOutput(samples=samples, keys=keys, stats=stats)


def _step(
    lanes: _Lanes,
    y: Samples,
    y_keys: torch.Tensor,
    n: int,
    a: float,
    in_prog: torch.Tensor,
    want: torch.Tensor,
    tl: _Tallies,
    accepted: _Accepted,
    stats: ExactStats,
    coin: torch.Tensor | None,
) -> None:
    """Apply :func:`round_step` to the lanes, keep the accepted rounds, abandon rounds that
    started after a problem's q-th acceptance (they can no longer matter), update the tallies.
    ``coin``: the factory's uniforms (B, m) (None when a = 0)."""
    m = y_keys.shape[1]
    state = RoundState(lanes.active, lanes.rid, lanes.k, lanes.flip, lanes.cand_keys)
    out = round_step(state, y_keys, coin, n, a, in_prog, want, tl.next_id)
    lane = torch.arange(m, device=y_keys.device).unsqueeze(0)
    lanes.cand = lanes.cand.cat(y).gather(torch.where(out.start, lane + m, lane))
    accept, q = out.accept, tl.q
    tl.next_id = out.next_id
    tl.n_acc = tl.n_acc + accept.sum(1)
    tl.n_fin = tl.n_fin + (accept | out.reject).sum(1)
    tallies = torch.stack(
        [
            want.sum(),
            accept.sum(),
            out.reject.sum(),
            accept.sum(1).max(),
            ((tl.n_acc >= q) & (q > 0)).any(),
        ]
    ).cpu()
    stats.rounds += int(tallies[0])
    stats.accepted += int(tallies[1])
    stats.rejected += int(tallies[2])
    accepted.add(accept, out.state.rid, out.state.cand_keys, lanes.cand, int(tallies[3]))
    live = out.state.active
    if bool(tallies[4]):
        abandon = live & (out.state.rid > accepted.cutoff(q).unsqueeze(1))
        live = live & ~abandon
        stats.abandoned += int(abandon.sum())
    lanes.active, lanes.rid, lanes.k, lanes.flip = live, out.state.rid, out.state.k, out.state.flip
    lanes.cand_keys = out.state.cand_keys


def lane_width(lanes: torch.Tensor, max_lanes: int) -> torch.Tensor:
    """Per-row runs: the lanes a row draws for ``lanes`` (B,) wanted, rounded up to a power of
    two (at most max_lanes; 0 stays 0), so that rows with similar needs share a draw call."""
    mantissa, exp = torch.frexp(lanes.double().clamp(min=1))
    up = torch.where(mantissa > 0.5, exp, exp - 1)
    width = (2 ** up.double()).long().clamp(max=max(max_lanes, 1))
    return torch.where(lanes > 0, torch.maximum(width, lanes.clamp(max=max_lanes)), 0)


def row_budget(
    source: DrawSource, max_draws: int | torch.Tensor | None, q: torch.Tensor
) -> torch.Tensor:
    """Each problem's budget (host LongTensor (B,)) counted against its own ``row_draws``:
    ``max_draws`` per problem, or ``DEFAULT_MAX_DRAWS_PER_OUTPUT`` per output from now."""
    assert source.row_draws is not None
    if max_draws is None:
        return source.row_draws + DEFAULT_MAX_DRAWS_PER_OUTPUT * q
    return torch.as_tensor(max_draws, dtype=torch.long).expand(q.shape[0]).clone()


def row_sizes(
    in_prog: torch.Tensor,
    want: torch.Tensor,
    need: torch.Tensor,
    spent: torch.Tensor,
    budget: torch.Tensor,
    max_lanes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row runs, the next step's sizes (pure; host LongTensors (B,), each row's from its own
    state only): the lanes each row draws for, the rounds it starts (its idle drawn lanes fill
    with new rounds while it lacks outputs, as :func:`fill_idle`), and the rows that cannot go
    on within their budget even with only their rounds in progress (the caller raises)."""
    full = lane_width(in_prog + want, max_lanes)
    least = lane_width(in_prog, max_lanes)
    over = spent + full > budget
    sizes = torch.where(over, least, full)
    want = torch.where(over, 0, want)
    stuck = over & ((least == 0) | (spent + least > budget))
    want = torch.where((need > 0) & (sizes > 0), sizes - in_prog, want)
    return sizes, want, stuck


def _row_over_budget(
    stats: ExactStats,
    spent: torch.Tensor,
    budget: torch.Tensor,
    stuck: torch.Tensor,
    q: torch.Tensor,
) -> DrawBudgetExceeded:
    """Per-row runs: the first problem that cannot go on within its own budget."""
    row = int(stuck.nonzero()[0])
    err = _over_budget(stats, int(budget[row]), q)
    return DrawBudgetExceeded(
        f"problem {row} (with one generator per problem, max_draws bounds each problem's own "
        f"draws; it spent {int(spent[row])}): {err}",
        err.stats,
    )


def run_exact_rows(
    source: DrawSource,
    s: float,
    num_outputs: int | torch.Tensor,
    max_draws: int | torch.Tensor | None,
    max_lanes: int,
    accept_rate: torch.Tensor | float | None,
    on_draw: Callable[[], None] | None,
) -> ExactOutput:
    """:func:`run_exact` with one generator per problem (:mod:`.rows`): row b's draws, coins,
    lane counts and budget are functions of row b's own state and stream, so its outputs do not
    depend on its batch-mates. Each row draws its own lane count (:func:`lane_width`; one draw
    call per distinct count, :meth:`DrawSource.ragged`), its factory coins come from its own
    generator, and ``max_draws`` bounds each row's own draws (:func:`row_budget`)."""
    n, a = _check_flat(s)
    gens = source.generator
    assert isinstance(gens, RowGenerators) and source.row_draws is not None
    b = len(gens)
    q = torch.as_tensor(num_outputs, dtype=torch.long).cpu().expand(b).clone()
    budget = row_budget(source, max_draws, q)
    stats, accepted = ExactStats(), _Accepted(int(q.max()))
    sizes = lane_width(first_lanes(q, accept_rate, max_lanes).expand(b), max_lanes)
    in_prog, want = torch.zeros_like(q), sizes
    stuck = source.row_draws + sizes > budget
    tl: _Tallies | None = None
    while not bool(stuck.any()) and int(sizes.max()) > 0:
        y, y_keys = source.ragged(sizes)
        dev = y_keys.device
        if tl is None:
            tl, lanes = _Tallies(q, b, dev), _Lanes(y, y_keys)
        lanes.resize(y_keys.shape[1], y)
        if on_draw is not None:
            on_draw()
        stats.draws, stats.calls = source.draws, source.calls
        stats.max_lanes_used = max(stats.max_lanes_used, int(sizes.max()))
        coin = gens.ragged_uniform(sizes, y_keys.shape[1], dev) if a > 0 else None
        _step(lanes, y, y_keys, n, a, in_prog.to(dev), want.to(dev), tl, accepted, stats, coin)
        lanes.compact()
        in_prog_d = lanes.active.sum(1)
        want_d = lane_targets(tl.n_acc, tl.n_fin, in_prog_d, tl.q, max_lanes)
        need_d = (tl.q - tl.n_acc).clamp(min=0)
        in_prog, want, need = torch.stack([in_prog_d, want_d, need_d]).cpu()
        sizes, want, stuck = row_sizes(in_prog, want, need, source.row_draws, budget, max_lanes)
    stats.draws, stats.calls = source.draws, source.calls
    if bool(stuck.any()):
        raise _row_over_budget(stats, source.row_draws, budget, stuck, q)
    assert tl is not None  # some problem wants an output
    _, keys, samples = accepted.merge()
    tallies = (tl.n_acc.cpu(), tl.n_fin.cpu())
    return ExactOutput(samples=samples, keys=keys, stats=stats, row_tallies=tallies)
