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

import torch

from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .options import DEFAULT_MAX_DRAWS_PER_OUTPUT, DEFAULT_MAX_LANES
from .samples import Samples
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

    def as_dict(self) -> dict:
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

    def _apply(self, fn) -> None:
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


def cat_samples(parts: list[Samples]) -> Samples:
    """Join sample batches along the sample dimension, pairwise in a balanced way, so that the
    copying is O(total log len(parts)) rather than O(total * len(parts))."""
    while len(parts) > 1:
        parts = [
            parts[i].cat(parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def run_exact(
    source: DrawSource,
    s: float,
    num_outputs: int | torch.Tensor,
    *,
    max_draws: int | None,
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
    out of the call (see :class:`DrawSource`); otherwise every call draws for all B.
    """
    n = int(math.floor(s))
    a = s - n
    if n > MAX_COLLISION:
        raise DrawBudgetExceeded(
            f"a flat round at 1/T = {s:.3g} needs {n:.3g} draws per round; that many draws are "
            'beyond any budget. Use a lower 1/T, or method="batch"',
            ExactStats().as_dict(),
        )
    per_problem = isinstance(num_outputs, torch.Tensor)
    q_max = int(num_outputs.max()) if per_problem else int(num_outputs)
    stats = ExactStats()
    gen = source.generator
    lanes: _Lanes | None = None
    # per-problem tallies (B,), created with the lanes on the first draw
    n_acc = n_fin = next_id = in_prog = want = torch.zeros(0, dtype=torch.long)
    q = torch.zeros(0, dtype=torch.long)
    accepted = _Accepted(q_max)
    b = source.num_problems or 1
    start_budget = source.draws
    # first step: one round per wanted output, or as many as the prior acceptance rate suggests
    q_host = torch.as_tensor(num_outputs).cpu()  # the first step is sized on the host
    if accept_rate is not None:
        rate = torch.as_tensor(accept_rate, dtype=torch.float64).cpu().clamp(min=1e-12)
        first = torch.ceil(LANE_FRACTION * q_host.double() / rate)
        first = torch.where(q_host > 0, first.clamp(min=1), 0.0)
        first = first.clamp(max=max_lanes).long()
    else:
        first = q_host.clamp(max=max_lanes).long()
    m = int(first.max())
    first_active = None
    if per_problem and source.accepts_active and bool((first == 0).any()):
        first_active = first > 0
    rows = int((first > 0).sum()) if first_active is not None else b

    while True:
        if lanes is not None:
            lanes.compact()
            in_prog = lanes.active.sum(1)
            need = (q - n_acc).clamp(min=0)  # outputs each problem still lacks
            # acceptance rate per round; rounds in progress count as possible acceptances, since
            # quick rejections arrive before slow acceptances and would bias the rate low
            z_hat = (n_acc + in_prog + 1).double() / (n_fin + in_prog + 1).double()
            target = torch.ceil(LANE_FRACTION * need.double() / z_hat).long().clamp(max=max_lanes)
            want = torch.where(need > 0, (target - in_prog).clamp(min=0), torch.zeros_like(need))
            sizes = torch.stack(
                [
                    (in_prog + want).max(),
                    in_prog.max(),
                    ((in_prog + want) > 0).sum(),
                    (in_prog > 0).sum(),
                ]
            ).cpu()
            m, m_min = int(sizes[0]), int(sizes[1])
            # problems drawn for: all B, or only those with rounds to run when draw takes active=
            rows, rows_min = (int(sizes[2]), int(sizes[3])) if source.accepts_active else (b, b)
            if m == 0:
                break
            if max_draws is not None and source.draws + rows * m > max_draws:
                if m_min == 0 or source.draws + rows_min * m_min > max_draws:
                    stats.draws, stats.calls = source.draws, source.calls
                    raise DrawBudgetExceeded(
                        f"the exact sampler would need more than max_draws={max_draws} base draws "
                        f"(spent {stats.draws}, accepted {stats.accepted} rounds for "
                        f'{int(q.sum())} outputs); raise max_draws, or use method="batch" '
                        "(approximate, fixed cost)",
                        stats.as_dict(),
                    )
                want = torch.zeros_like(want)
                m, rows = m_min, rows_min
            # A draw call gives every problem it draws for the same number of lanes m (the most
            # any problem wants): a problem that still lacks outputs starts rounds in its
            # otherwise idle lanes, since those draws are made anyway (rounds that turn out not
            # to be needed are abandoned; outputs stay the first accepted rounds in start order).
            drawn = (in_prog + want) > 0 if source.accepts_active else need >= 0
            want = torch.where((need > 0) & drawn, m - in_prog, want)
        elif max_draws is not None and source.draws + rows * m > max_draws:
            raise DrawBudgetExceeded(
                f"max_draws={max_draws} leaves no room for the first step's {rows * m} draws "
                f"({source.draws} already spent); raise max_draws",
                stats.as_dict(),
            )

        if lanes is not None and rows < b:
            y, y_keys = source(m, active=(in_prog + want) > 0)
        elif lanes is None and first_active is not None:
            y, y_keys = source(m, active=first_active)
        else:
            y, y_keys = source(m)
        if on_draw is not None:
            on_draw()
        stats.draws, stats.calls = source.draws, source.calls
        stats.max_lanes_used = max(stats.max_lanes_used, m)
        dev = y_keys.device
        lane = torch.arange(m, device=dev).unsqueeze(0)
        if lanes is None:
            b = y_keys.shape[0]
            q = torch.as_tensor(num_outputs, dtype=torch.long).to(dev).expand(b).clone()
            if max_draws is None:
                max_draws = start_budget + DEFAULT_MAX_DRAWS_PER_OUTPUT * int(q.sum())
            lanes = _Lanes(y, y_keys)
            in_prog = torch.zeros(b, dtype=torch.long, device=dev)
            want = first.to(dev).expand(b).clone()
            next_id = torch.zeros(b, dtype=torch.long, device=dev)
            n_acc = torch.zeros(b, dtype=torch.long, device=dev)
            n_fin = torch.zeros(b, dtype=torch.long, device=dev)
        else:
            lanes.resize(m, y)
        active, k, flip, rid = lanes.active, lanes.k, lanes.flip, lanes.rid
        cand_keys = lanes.cand_keys

        # --- rounds in progress, decided on their state before this step ------------------
        match = (y_keys == cand_keys).all(-1)
        in_stage2 = active & (flip > 0)
        in_stage1 = active & (flip == 0)
        accept = in_stage2 & match  # factory: heads
        if a > 0:
            coin = uniform((b, m), gen, dev)
            tails = in_stage2 & ~match & (coin * flip.clamp(min=1).double() < a)  # prob a / i
        else:
            tails = torch.zeros_like(active)
        reject = tails | (in_stage1 & ~match)  # collision stage: early exit at a mismatch
        flip = torch.where(in_stage2 & ~accept & ~tails, flip + 1, flip)
        k = torch.where(in_stage1 & match, k + 1, k)

        # --- new rounds in lanes [in_prog, in_prog + want), numbered in lane order ----------
        start = (lane >= in_prog.unsqueeze(1)) & (lane < (in_prog + want).unsqueeze(1))
        rid = torch.where(start, next_id.unsqueeze(1) + lane - in_prog.unsqueeze(1), rid)
        next_id = next_id + want
        k = torch.where(start, torch.ones_like(k), k)
        flip = torch.where(start, torch.zeros_like(flip), flip)
        cand_keys = torch.where(start.unsqueeze(-1), y_keys, cand_keys)
        lanes.cand = lanes.cand.cat(y).gather(torch.where(start, lane + m, lane))
        live = (active & ~accept & ~reject) | start

        # --- stage 1 complete: accept (a == 0) or enter the Bernoulli factory ---------------
        done1 = live & (flip == 0) & (k >= n)
        if a > 0:
            flip = torch.where(done1, torch.ones_like(flip), flip)
        else:
            accept = accept | done1
        live = live & ~accept

        n_acc = n_acc + accept.sum(1)
        n_fin = n_fin + (accept | reject).sum(1)
        tallies = torch.stack(
            [
                want.sum(),
                accept.sum(),
                reject.sum(),
                accept.sum(1).max(),
                ((n_acc >= q) & (q > 0)).any(),
            ]
        ).cpu()
        stats.rounds += int(tallies[0])
        stats.accepted += int(tallies[1])
        stats.rejected += int(tallies[2])

        # --- keep accepted rounds; once a problem has q, the q-th in start order is a cutoff ---
        accepted.add(accept, rid, cand_keys, lanes.cand, int(tallies[3]))
        if bool(tallies[4]):
            abandon = live & (rid > accepted.cutoff(q).unsqueeze(1))
            live = live & ~abandon  # started after the q-th acceptance: can no longer matter
            stats.abandoned += int(abandon.sum())

        lanes.active, lanes.k, lanes.flip, lanes.rid = live, k, flip, rid
        lanes.cand_keys = cand_keys

    ids, keys, samples = accepted.merge()
    return ExactOutput(samples=samples, keys=keys, stats=stats)
