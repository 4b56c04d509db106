"""Running a collision tree: every subtree is a stream of exact, i.i.d. outputs.

A leaf's stream is the flat rounds of :func:`run_exact` (each request is a fresh run whose outputs
are the first accepted rounds in start order). A node's stream pairs the i-th output of its left
stream with the i-th of its right stream and keeps the left one when their keys are equal; kept
pairs are served in pair order. Why the outputs are exact and independent:

* each request to a child returns fresh outputs that, given everything drawn before, are i.i.d.
  P_a (induction; for leaves this is the start-order rule of the flat sampler), so the pairs
  form an i.i.d. sequence of (X, Y) ~ P_a x P_b, however many are requested at a time;
* a pair is kept with probability S(a+b) / (S(a) S(b)) and a kept X is P_(a+b)-distributed, so
  the kept pairs, in pair order, are i.i.d. P_(a+b) (the pair index of the next kept pair is a
  stopping time; what follows it is independent of it);
* kept outputs beyond what a request needs stay in the node's buffer and are served, in order,
  to the next request. A buffered output was never shown to anyone, so it is still a fresh
  element of the same i.i.d. sequence. Identical subtrees share one stream (a request takes the
  next outputs of the sequence), which is sound for the same reason.

How many pairs a node asks its children for depends only on counts of earlier kept pairs, never on
the values of the pairs it asks for (:func:`pairs_to_try`). The counts are the run's own, not the
pilot's: a node asks for short / rho_hi pairs, rho_hi an upper confidence bound of its acceptance
rate from the pairs it tried so far (1 before any pair, so the first request is ``short`` pairs).
Its kept outputs then exceed what is missing only by chance, so a wrong pilot cannot make a node
try pairs whose outputs are never used (docs/algorithms.md, "Pair requests").

Everything is vectorised over the B problems: per-problem request sizes are LongTensors (B,),
children are called once per step for all problems, and problems that need nothing are left out
of ``draw`` calls that take ``active=``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .exact import LANE_FRACTION, ExactOutput, ExactStats, run_exact
from .options import DEFAULT_MAX_LANES
from .plan import Tree
from .rows import RowGenerators
from .samples import Samples

#: Standard deviations above the observed acceptance at which a node sizes its pair requests.
RATE_MARGIN = 2.0
#: A request tries at most this many times the pairs tried so far (or ``short``, if more): a rate
#: measured on few pairs never sizes a request many times larger than its own evidence.
REQUEST_GROWTH = 4
#: Rounds a leaf must have finished before its measured acceptance rate replaces the planned one.
LEAF_RATE_ROUNDS = 32


class _Buffer:
    """Per-problem FIFO of ready outputs: samples (B, L, ...), keys (B, L, d), count (B,)."""

    def __init__(self) -> None:
        self.samples: Samples | None = None
        self.keys: torch.Tensor | None = None
        self.count: torch.Tensor | None = None

    def append(self, samples: Samples, keys: torch.Tensor, keep: torch.Tensor) -> None:
        """Append, per problem, the entries where ``keep`` (B, P) is True, in order."""
        b, p = keep.shape
        dev = keep.device
        big = torch.iinfo(torch.long).max
        new_n = keep.sum(1)
        rank = keep.long().cumsum(1) - 1
        if self.samples is None:
            count = torch.zeros(b, dtype=torch.long, device=dev)
            sort_key = torch.where(keep, rank, big)
            all_samples, all_keys = samples, keys
        else:
            assert self.samples is not None and self.keys is not None and self.count is not None
            count = self.count
            pos = torch.arange(self.keys.shape[1], device=dev).unsqueeze(0)
            sort_key = torch.cat(
                [
                    torch.where(pos < count.unsqueeze(1), pos, big),
                    torch.where(keep, count.unsqueeze(1) + rank, big),
                ],
                1,
            )
            all_samples = self.samples.cat(samples)
            all_keys = torch.cat([self.keys, keys], 1)
        total = count + new_n
        width = max(int(total.max()), 1)
        order = torch.sort(sort_key, dim=1, stable=True).indices[:, :width]
        self.samples = all_samples.gather(order)
        self.keys = all_keys.gather(1, order.unsqueeze(-1).expand(-1, -1, keys.shape[2]))
        self.count = total

    def pop(self, k: torch.Tensor) -> tuple[Samples, torch.Tensor]:
        """The first k_b entries of each problem (padded to max k), removed from the buffer."""
        assert self.samples is not None and self.keys is not None and self.count is not None
        length = self.keys.shape[1]
        dev = self.keys.device
        width = int(k.max())
        head = torch.arange(width, device=dev).unsqueeze(0).expand(k.shape[0], -1)
        head = head.clamp(max=length - 1)
        out_samples = self.samples.gather(head)
        out_keys = self.keys.gather(1, head.unsqueeze(-1).expand(-1, -1, self.keys.shape[2]))
        rest = self.count - k
        keep_width = max(int(rest.max()), 1)
        tail = (torch.arange(keep_width, device=dev).unsqueeze(0) + k.unsqueeze(1)).clamp(
            max=length - 1
        )
        self.samples = self.samples.gather(tail)
        self.keys = self.keys.gather(1, tail.unsqueeze(-1).expand(-1, -1, self.keys.shape[2]))
        self.count = rest
        return out_samples, out_keys


class TreeRun:
    """Shared state of one tree run: the draw source, the budget, statistics, streams."""

    def __init__(
        self,
        source: DrawSource,
        *,
        max_draws: int | torch.Tensor | None,
        max_lanes: int,
        leaf_rates: dict[float, torch.Tensor] | None,
        on_draw: Callable[[], None] | None,
    ) -> None:
        self.source = source
        self.max_draws = max_draws
        self.max_lanes = max_lanes
        self.leaf_rates = leaf_rates or {}
        self.on_draw = on_draw
        self.stats = ExactStats()
        self.pairs = 0
        self.kept = 0
        self.streams: dict[int, _Stream] = {}
        self.leaf_tally: dict[float, tuple[int, int]] = {}
        self.row_tally: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}

    def stream(self, tree: Tree) -> _Stream:
        if id(tree) not in self.streams:
            self.streams[id(tree)] = _Stream(self, tree)
        return self.streams[id(tree)]

    def leaf(self, s: float, q: int | torch.Tensor) -> ExactOutput:
        rate = self._leaf_rate(s)
        try:
            out = run_exact(
                self.source,
                s,
                q,
                max_draws=self.max_draws,
                max_lanes=self.max_lanes,
                accept_rate=rate,
                on_draw=self.on_draw,
            )
        except DrawBudgetExceeded as exc:  # count the interrupted run's rounds too
            part = exc.stats
            self._add(
                ExactStats(
                    rounds=part.get("rounds", 0),
                    accepted=part.get("accepted_rounds", 0),
                    rejected=part.get("rejected_rounds", 0),
                    abandoned=part.get("abandoned_rounds", 0),
                    max_lanes_used=part.get("max_lanes_used", 0),
                )
            )
            raise
        st = out.stats
        if out.row_tallies is not None:  # per-row runs: each problem's own tally
            acc_b, fin_b = self.row_tally.get(s, (0, 0))
            self.row_tally[s] = (acc_b + out.row_tallies[0], fin_b + out.row_tallies[1])
        acc, fin = self.leaf_tally.get(s, (0, 0))
        self.leaf_tally[s] = (acc + st.accepted, fin + st.accepted + st.rejected)
        self._add(st)
        return out

    def _leaf_rate(self, s: float) -> torch.Tensor | float | None:
        """The acceptance rate that sizes a leaf request's first step: the planned one, until
        LEAF_RATE_ROUNDS rounds of the leaf finished; then the measured one. With per-row
        generators each problem's own (a problem below LEAF_RATE_ROUNDS: one round per output,
        as without a rate), never the batch's total."""
        planned: torch.Tensor | float | None = self.leaf_rates.get(s)
        if self.source.per_row:
            if s not in self.row_tally:
                return planned
            acc_b, fin_b = self.row_tally[s]
            measured = (acc_b + 1).double() / (fin_b + 1).double()
            base = LANE_FRACTION if planned is None else torch.as_tensor(planned).cpu().double()
            return torch.where(fin_b >= LEAF_RATE_ROUNDS, measured, base)
        acc, fin = self.leaf_tally.get(s, (0, 0))
        if fin >= LEAF_RATE_ROUNDS:  # measured over earlier requests to this leaf
            return (acc + 1) / (fin + 1)
        return planned

    def _add(self, st: ExactStats) -> None:
        self.stats.rounds += st.rounds
        self.stats.accepted += st.accepted
        self.stats.rejected += st.rejected
        self.stats.abandoned += st.abandoned
        self.stats.max_lanes_used = max(self.stats.max_lanes_used, st.max_lanes_used)


class _Stream:
    """The output stream of one (sub)tree."""

    def __init__(self, run: TreeRun, tree: Tree) -> None:
        self.run = run
        self.tree = tree
        self.buffer = _Buffer()
        self.counts: NodeCounts | None = None  # pairs tried and kept per problem

    def take(self, k: int | torch.Tensor) -> tuple[Samples, torch.Tensor]:
        """The next k (int, or (B,) per problem) outputs: samples (B, max k, ...), keys
        (B, max k, d); row b is valid up to k_b."""
        if self.tree.is_leaf:
            out = self.run.leaf(self.tree.s, k)
            return out.samples, out.keys
        while True:
            if self.buffer.count is None:
                short = k
            else:
                k = _per_problem(k, self.buffer.count)
                short = (k - self.buffer.count).clamp(min=0)
                if int(short.max()) == 0:
                    return self.buffer.pop(k)
            self._fill(short)

    def _fill(self, short: int | torch.Tensor) -> None:
        """Try pairs for ``short`` more kept outputs: as many as an upper bound on the
        acceptance rate calls for (:func:`pairs_to_try`), so the kept ones rarely overshoot."""
        left, right = self.tree.parts
        want: int | torch.Tensor
        if isinstance(short, torch.Tensor):
            c = self.counts or NodeCounts(torch.zeros_like(short), torch.zeros_like(short))
            want = pairs_to_try(short, c.pairs.to(short.device), c.kept.to(short.device))
        else:  # B not known yet (no draw made, so no pair tried): the first request
            want = max(1, short)
        if left is right:  # one stream, consecutive outputs paired: (0, 1), (2, 3), ...
            xs, xk = self.run.stream(left).take(2 * want)
            width = xk.shape[1] // 2
            idx = torch.arange(width, device=xk.device).unsqueeze(0).expand(xk.shape[0], -1)
            a_s, a_k = xs.gather(2 * idx), xk[:, 0 : 2 * width : 2]
            b_k = xk[:, 1 : 2 * width : 2]
        else:
            a_s, a_k = self.run.stream(left).take(want)
            _, b_k = self.run.stream(right).take(want)
            width = a_k.shape[1]
        want_t = _per_problem(want, torch.zeros(a_k.shape[0], dtype=torch.long, device=a_k.device))
        keep, self.counts = node_step(self.counts, a_k[:, :width], b_k[:, :width], want_t)
        self.buffer.append(a_s, a_k, keep)
        tally = torch.stack([want_t.sum(), keep.sum()]).cpu()
        self.run.pairs += int(tally[0])
        self.run.kept += int(tally[1])


class NodeCounts(NamedTuple):
    """A tree node's state: pairs tried and kept so far per problem, LongTensors (B,)."""

    pairs: torch.Tensor
    kept: torch.Tensor


def node_step(
    counts: NodeCounts | None, left: torch.Tensor, right: torch.Tensor, want: torch.Tensor
) -> tuple[torch.Tensor, NodeCounts]:
    """One round of a node (pure): the pairs (left[b, j], right[b, j]) of two independent child
    outputs' keys (B, W, d), of which the first ``want[b]`` (B,) are tried. A pair is kept when
    its keys agree (the collision that multiplies the children's exponents; exact because the
    children's outputs are i.i.d.); its left sample is the node's output. Returns the keep mask
    (B, W) and the node's counts after this round."""
    valid = torch.arange(left.shape[1], device=left.device).unsqueeze(0) < want.unsqueeze(1)
    keep = valid & (left == right).all(-1)
    kept = keep.sum(1)
    if counts is None:
        return keep, NodeCounts(want.clone(), kept)
    return keep, NodeCounts(counts.pairs + want, counts.kept + kept)


def pairs_to_try(short: torch.Tensor, tried: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Pairs a node tries per problem (B,) for ``short`` (B,) more kept outputs, after it tried
    ``tried`` pairs and kept ``kept`` of them (pure; counts only, never values, never the pilot).

    ceil(short / rho_hi) with rho_hi = min(1, (k + RATE_MARGIN sqrt(k)) / (tried + 1)),
    k = kept + 1: an upper confidence bound of the acceptance rate (1 before any pair, so the
    first request is ``short`` pairs and cannot overshoot). The expected kept outputs of a
    request are short * rho / rho_hi <= short whenever rho_hi >= rho. A request never exceeds
    max(short, REQUEST_GROWTH * tried): when few pairs were tried the bound can still fall below
    rho by chance, and this keeps the damage to a share of what was tried. At least 1 pair where
    anything is missing, 0 elsewhere.
    """
    k = kept.double() + 1.0
    hi = ((k + RATE_MARGIN * k.sqrt()) / (tried.double() + 1.0)).clamp(max=1.0)
    want = torch.ceil(short.double() / hi)
    cap = torch.maximum(short.double(), REQUEST_GROWTH * tried.double())
    want = torch.minimum(want, cap)
    return torch.where(short > 0, want.clamp(min=1.0), 0.0).long()


def _per_problem(k: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if isinstance(k, torch.Tensor):
        return k.to(like.device)
    return torch.full_like(like, int(k))


def run_tree(
    source: DrawSource,
    tree: Tree,
    num_outputs: int,
    *,
    max_draws: int | torch.Tensor | None,
    max_lanes: int = DEFAULT_MAX_LANES,
    leaf_rates: dict[float, torch.Tensor] | None = None,
    on_draw: Callable[[], None] | None = None,
) -> tuple[ExactOutput, TreeRun]:
    """Draw ``num_outputs`` exact P_s outputs per problem with ``tree`` (s = tree.s).

    ``max_draws`` bounds the draws of ``source`` in total (draws made before, e.g. a pilot,
    count); :class:`DrawBudgetExceeded` is raised before a call that would exceed it, with the
    run's statistics. ``leaf_rates``: planned S(r) (B,) per leaf exponent; it only sizes the
    first step of a leaf's first request (at most ``max_lanes`` rounds), later requests use the
    leaf's measured acceptance. Nodes size their pair requests from their own counts only.
    With one generator per problem (``source.per_row``), ``max_draws`` is each problem's own
    budget (int or host LongTensor (B,)) and every leaf request is sized from the problem's own
    tallies, so that a problem's outputs never depend on its batch-mates (see
    :func:`~.exact.run_exact_rows`; node requests are per problem already).
    """
    run = TreeRun(
        source,
        max_draws=max_draws,
        max_lanes=max_lanes,
        leaf_rates=leaf_rates,
        on_draw=on_draw,
    )
    request: int | torch.Tensor = num_outputs
    b = len(source.generator) if isinstance(source.generator, RowGenerators) else None
    if source.num_problems is not None or b is not None:  # per-problem counts from the start
        request = torch.full((source.num_problems or b or 1,), num_outputs, dtype=torch.long)
    try:
        samples, keys = run.stream(tree).take(request)
    except DrawBudgetExceeded as exc:
        exc.stats.update(run.stats.as_dict())
        exc.stats.update(
            draws=source.draws, model_calls=source.calls, pairs=run.pairs, kept_pairs=run.kept
        )
        raise
    st = run.stats
    st.draws, st.calls = source.draws, source.calls
    return ExactOutput(samples=samples, keys=keys, stats=st), run
