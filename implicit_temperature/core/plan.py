"""Collision trees: their notation, their expected cost, and the planner that picks one.

A tree describes how the exact sampler reaches s = 1/T:

* a **leaf** ``r`` (r >= 1) is the flat round at exponent r (collision of floor(r) draws, then the
  Bernoulli factory for the fractional part): its outputs are i.i.d. P_r = P^r / S(r);
* a **node** ``A+B`` draws X from A and Y from B (independent streams of exact outputs) and keeps X
  when key(X) == key(Y): P(keep, X = x) = P_a(x) P_b(x), proportional to P(x)^(a+b), so kept X are
  i.i.d. P_(a+b). Kept pairs are taken in pair order.

Notation (``plan=`` of :func:`temperature_sample`): leaves are numbers >= 1 (``2``, ``1.5``,
``10/3``), ``+`` joins two subtrees (``a+b+c`` is ``(a+b)+c``), parentheses group, and ``k*X``
(k an integer >= 1) is k copies of X joined pairwise, ``k*X = (floor(k/2)*X)+(ceil(k/2)*X)``:
``2*X`` is ``X+X`` and ``2*2*2`` is ``2*(2*2)``. Example at T = 0.1: ``"2*(2*(1.5+1))"``. The
leaves must add up to 1/T (to 6 significant digits; they are then rescaled to add up to it
exactly). ``"flat"`` is the single leaf 1/T.

Cost. With power sums S(r) = sum_x P(x)^r, a leaf r = n + a costs
``(1 + S(1) + ... + S(n-1) + [a > 0] S(r-1)) / S(r)`` draws per output, and a node
``c(a+b) = (c(a) + c(b)) S(a) S(b) / S(a+b)`` (1/acceptance pairs per output, each pair one output
of each side). :func:`tree_cost` evaluates this for a known law (:class:`LawPowerSums`) or for
estimates from a pilot batch (:class:`PilotPowerSums`); :func:`plan_tree` searches the cheapest
tree by dynamic programming over splits on a grid.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass
from functools import cached_property

import torch

from .errors import ImplicitTemperatureError

#: Relative distance within which an exponent is snapped to the nearest integer.
SNAP_RTOL = 1e-9
#: Planner grid: splits are searched on multiples of about this step (``GRID_STEP``).
GRID_STEP = 0.05
#: Above this exponent the planner only considers halving (X = Y + Y, balanced); below it, every
#: split on the grid. Balanced splits are optimal when one outcome dominates, which is what
#: happens at large 1/T (S(a) S(b) / S(a + b) tends to the number of most likely outcomes).
GRID_MAX_EXPONENT = 24.0
#: Largest integer r for which the pilot's unbiased estimate of S(r) is tabulated.
PILOT_MAX_POWER = 64


class InvalidPlanError(ImplicitTemperatureError, ValueError):
    """A ``plan=`` that is not "auto", "flat" or a well-formed tree for this temperature."""


def snap(r: float) -> float:
    """``r`` rounded to the nearest integer when within ``SNAP_RTOL`` of it."""
    if not math.isfinite(r):
        return r
    k = round(r)
    return float(k) if abs(r - k) <= SNAP_RTOL * max(1.0, abs(r)) else float(r)


_INTERN: weakref.WeakValueDictionary[tuple[object, ...], Tree] = weakref.WeakValueDictionary()


@dataclass(frozen=True, eq=False)
class Tree:
    """A collision tree (build with :func:`leaf` and :func:`pair`; equal trees are the same
    object, so identical subtrees are recognised by identity).

    s: the exponent reached (1/T of this subtree). left/right: children (None for a leaf).
    """

    s: float
    left: Tree | None = None
    right: Tree | None = None

    @property
    def is_leaf(self) -> bool:
        return self.left is None

    @property
    def parts(self) -> tuple[Tree, Tree]:
        """(left, right) of an inner node; a ValueError for a leaf."""
        if self.left is None or self.right is None:
            raise ValueError("a leaf of a collision tree has no children")
        return self.left, self.right

    @cached_property
    def min_draws(self) -> float:
        """Fewest base draws one output can cost: an accepted flat round at r draws ceil(r)."""
        if self.is_leaf:
            return float(math.ceil(self.s))
        left, right = self.parts
        return left.min_draws + right.min_draws

    @cached_property
    def depth(self) -> int:
        return 0 if self.is_leaf else 1 + max(t.depth for t in self.parts)

    def nodes(self) -> list[Tree]:
        """Distinct subtrees (each once), children before parents."""
        seen: dict[int, Tree] = {}

        def visit(t: Tree) -> None:
            if id(t) in seen:
                return
            if not t.is_leaf:
                visit(t.parts[0])
                visit(t.parts[1])
            seen[id(t)] = t

        visit(self)
        return list(seen.values())

    def __str__(self) -> str:
        return format_tree(self)


def leaf(r: float) -> Tree:
    """The flat round at exponent r >= 1."""
    r = snap(float(r))
    if not r >= 1.0 - SNAP_RTOL:
        raise InvalidPlanError(f"a leaf of a collision tree needs exponent >= 1, got {r:g}")
    key = ("leaf", r)
    node = _INTERN.get(key)
    if node is None:
        node = Tree(r)
        _INTERN[key] = node
    return node


def pair(left: Tree, right: Tree) -> Tree:
    """The node keeping X ~ left when key(X) == key(Y), Y ~ right."""
    key = ("pair", id(left), id(right))
    node = _INTERN.get(key)
    if node is None:
        node = Tree(snap(left.s + right.s), left, right)
        _INTERN[key] = node
    return node


def repeat(k: int, t: Tree) -> Tree:
    """``k*t``: k copies of t joined pairwise, (floor(k/2)*t) + (ceil(k/2)*t)."""
    if k < 1:
        raise InvalidPlanError(f"a repeat count must be >= 1, got {k}")
    if k == 1:
        return t
    return pair(repeat(k // 2, t), repeat(k - k // 2, t))


def _fmt_number(r: float) -> str:
    return str(int(r)) if r == int(r) else f"{r:.8g}"


def format_tree(t: Tree) -> str:
    """The notation of ``t`` (see the module docstring); identical halves print as ``2*X``."""
    memo: dict[int, str] = {}

    def fmt(x: Tree) -> str:
        if id(x) in memo:
            return memo[id(x)]
        if x.is_leaf:
            out = _fmt_number(x.s)
        elif x.left is x.right:
            out = "2*" + wrap(x.parts[0])
        else:
            out = wrap(x.parts[0]) + "+" + wrap(x.parts[1])
        memo[id(x)] = out
        return out

    def wrap(x: Tree) -> str:
        return fmt(x) if x.is_leaf else "(" + fmt(x) + ")"

    return fmt(t)


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(.))")


def parse_tree(text: str) -> Tree:
    """Parse the notation of the module docstring (leaves are not rescaled here)."""
    tokens: list[tuple[str, str]] = []
    for digits, other in _TOKEN.findall(text):
        if digits:
            tokens.append(("num", digits))
        elif other.strip():
            if other not in "+*()/":
                raise InvalidPlanError(
                    f"unexpected character {other!r} in plan {text!r}; use numbers, '+', '*', "
                    "'/' and parentheses, e.g. '(2+2)+(3+3)'"
                )
            tokens.append(("op", other))
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise InvalidPlanError(f"plan {text!r} ends too early")
        pos += 1
        return tokens[pos - 1]

    def number() -> float:
        kind, value = take()
        if kind != "num":
            raise InvalidPlanError(f"expected a number in plan {text!r}, got {value!r}")
        x = float(value)
        if peek() == ("op", "/"):
            take()
            kind, value = take()
            if kind != "num" or float(value) == 0:
                raise InvalidPlanError(f"bad fraction in plan {text!r}")
            x = x / float(value)
        return x

    def factor() -> Tree:
        tok = peek()
        if tok == ("op", "("):
            take()
            t = expr()
            if take() != ("op", ")"):
                raise InvalidPlanError(f"missing ')' in plan {text!r}")
            return t
        return leaf(number())

    def term() -> Tree:
        tok = peek()
        nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
        if tok is not None and tok[0] == "num" and nxt == ("op", "*"):
            k = float(take()[1])
            take()
            if k != int(k) or k < 1:
                raise InvalidPlanError(f"a repeat count must be an integer >= 1 in {text!r}")
            return repeat(int(k), term())
        return factor()

    def expr() -> Tree:
        t = term()
        while peek() == ("op", "+"):
            take()
            t = pair(t, term())
        return t

    if not text.strip():
        raise InvalidPlanError("empty plan; use 'auto', 'flat' or a tree such as '(2+2)+(3+3)'")
    tree = expr()
    if pos != len(tokens):
        raise InvalidPlanError(f"unexpected {tokens[pos][1]!r} in plan {text!r}")
    return tree


def rescale(t: Tree, factor: float) -> Tree:
    """The same tree with every leaf multiplied by ``factor``."""
    memo: dict[int, Tree] = {}

    def go(x: Tree) -> Tree:
        if id(x) not in memo:
            memo[id(x)] = leaf(x.s * factor) if x.is_leaf else pair(go(x.parts[0]), go(x.parts[1]))
        return memo[id(x)]

    return go(t)


def resolve_plan(plan: str | Tree, s: float) -> Tree | None:
    """The tree for ``plan`` at exponent s (None for "auto", which needs power sums)."""
    if isinstance(plan, Tree):
        tree = plan
    elif not isinstance(plan, str):
        raise TypeError(
            f"plan must be 'auto', 'flat', a tree string such as '(2+2)+(3+3)' or a Tree, got "
            f"{type(plan).__name__}"
        )
    elif plan == "auto":
        return None
    elif plan == "flat":
        return leaf(s)
    else:
        tree = parse_tree(plan)
    if not abs(tree.s - s) <= 1e-6 * s:
        raise InvalidPlanError(
            f"plan {format_tree(tree)!r} reaches exponent {tree.s:.6g} but 1/T = {s:.6g}; "
            "its leaves must add up to 1/T"
        )
    return rescale(tree, s / tree.s) if tree.s != s else tree


# --------------------------------------------------------------------------- power sums


class PowerSums:
    """log S(r) = log sum_x P(x)^r per problem (B,), for a tensor of exponents r >= 0."""

    num_problems: int

    def log_s(self, r: torch.Tensor) -> torch.Tensor:  # (R,) -> (B, R)
        raise NotImplementedError

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:  # (R,) integers >= 1 -> (B, R)
        """sum_{i=1}^{n-1} S(i) (the collision stage's expected draws after the first)."""
        raise NotImplementedError


class LawPowerSums(PowerSums):
    """Exact power sums of known categorical laws ``probs`` (K,) or (B, K) (rows sum to 1)."""

    def __init__(self, probs: torch.Tensor) -> None:
        p = torch.as_tensor(probs, dtype=torch.float64)
        if p.dim() == 1:
            p = p.unsqueeze(0)
        self.num_problems = p.shape[0]
        self.logp = torch.where(p > 0, torch.log(p.clamp(min=1e-300)), float("-inf"))
        self.p = p

    def log_s(self, r: torch.Tensor) -> torch.Tensor:
        r = r.to(torch.float64)
        terms = self.logp.unsqueeze(-1) * r  # (B, K, R); -inf * r stays -inf for r > 0
        terms = torch.where(self.p.unsqueeze(-1) > 0, terms, float("-inf"))
        return torch.logsumexp(terms, dim=1)

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:
        m = (n.to(torch.float64) - 1.0).clamp(min=0.0)  # (R,)
        p = self.p.unsqueeze(-1)  # (B, K, 1)
        # sum_{i=1}^{m} p^i = p (1 - p^m) / (1 - p); m for p = 1
        geo = p * -torch.expm1(m * self.logp.unsqueeze(-1)) / (1.0 - p).clamp(min=1e-300)
        terms = torch.where(p >= 1.0, m.expand_as(geo), torch.where(p > 0, geo, 0.0))
        return terms.sum(1)


class PilotPowerSums(PowerSums):
    """Power sums estimated from pilot batches: ``counts`` (B, N), how many of the N pilot
    samples of each problem share each sample's key (as :func:`group_counts` returns).

    * integer r <= K: sum over seen outcomes of C(c_x, r) / C(N, r), unbiased for S(r) (it counts
      the r-subsets of the pilot that collide); r = 0 gives the number of distinct outcomes seen.
      K = floor(sqrt(2 c_max)) (at least 1, at most ``PILOT_MAX_POWER``): for the top outcome,
      C(c, r) / C(N, r) falls below (c/N)^r by a factor of about exp(-r^2 / (2c)), so beyond
      sqrt(2c) a typical pilot would make S(r) look far too small (a large r near c_max would
      also rest on a handful of samples);
    * fractional r <= K: log-linear interpolation between the neighbouring integers. log S is
      convex in r (Hoelder), so with exact integer values this is an upper bound on S(r), tight
      when one outcome dominates;
    * r > K: log-linear extrapolation with the slope between K - 1 and K. By convexity the true
      slope can only grow (towards log max P), so this errs towards a smaller S(r), i.e. a larger
      estimated cost: auto leans to batch, and the pilot grows (``PILOT_SHARE`` of the estimate)
      until the estimate is good enough. (The top outcome's share c_max / N would be less
      biased for a clear mode but badly optimistic on spread laws, where the largest of many
      small counts overstates its probability.) In a tree's cost S(a) S(b) / S(a + b) then only
      depends on the level S(K) / exp(K slope).

    Outcomes the pilot never saw are missing, so on heavy tails S(r) for r < 1 (and the costs of
    leaves in (1, 2)) are underestimated.
    """

    def __init__(self, counts: torch.Tensor) -> None:
        counts = counts.cpu()  # planning runs on the host (many small steps)
        c = counts.to(torch.float64)
        if c.dim() == 1:
            c = c.unsqueeze(0)
        b, n = c.shape
        self.num_problems = b
        dev = c.device
        # outcomes per count value: each of the c samples of an outcome adds 1/c
        hist = torch.zeros(b, n + 1, dtype=torch.float64, device=dev)
        hist.scatter_add_(1, counts.long().view(b, n), 1.0 / c)
        kcap = min(PILOT_MAX_POWER, n)
        cv = torch.arange(n + 1, dtype=torch.float64, device=dev).unsqueeze(1)  # (N+1, 1)
        kv = torch.arange(kcap + 1, dtype=torch.float64, device=dev).unsqueeze(0)  # (1, K+1)
        ok = kv <= cv
        log_ratio = (
            torch.lgamma(cv + 1)
            - torch.lgamma(torch.where(ok, cv - kv + 1, torch.ones_like(cv - kv)))
            - torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64, device=dev))
            + torch.lgamma(n - kv + 1)
        )
        weight = torch.where(ok, torch.exp(log_ratio), torch.zeros_like(log_ratio))
        est = hist @ weight  # (B, K+1): estimates of S(0..K)
        c_max = c.amax(1)
        self.k = torch.clamp(torch.floor(torch.sqrt(2 * c_max)), min=1, max=kcap).long()  # (B,)
        self.log_int = torch.log(est.clamp(min=1e-300))
        self.cum = torch.cumsum(est, 1)  # sum_{i<=j} S(i), S(0) included
        rows = torch.arange(b, device=dev)
        self.log_k = self.log_int[rows, self.k]
        self.slope = self.log_k - self.log_int[rows, self.k - 1]  # <= 0

    def log_s(self, r: torch.Tensor) -> torch.Tensor:
        r = r.to(torch.float64).to(self.log_int.device).unsqueeze(0)  # (1, R)
        k = self.k.unsqueeze(1).double()
        lo = torch.floor(torch.minimum(r, k)).clamp(min=0)
        frac = torch.minimum(r, k) - lo
        lo_i = lo.long().expand(self.num_problems, -1)
        hi_i = (lo_i + 1).clamp(max=self.log_int.shape[1] - 1)
        inside = (1 - frac) * self.log_int.gather(1, lo_i) + frac * self.log_int.gather(1, hi_i)
        outside = self.log_k.unsqueeze(1) + (r - k) * self.slope.unsqueeze(1)
        return torch.where(r <= k, inside, outside)

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:
        m = (n.to(torch.float64).to(self.cum.device) - 1.0).clamp(min=0).unsqueeze(0)  # (1, R)
        k = self.k.unsqueeze(1).double()
        within = torch.minimum(m, k).long().expand(self.num_problems, -1)
        direct = self.cum.gather(1, within) - self.cum[:, :1]  # sum_{i=1}^{min(m, K)} S(i)
        beyond = (m - k).clamp(min=0)
        rho = torch.exp(self.slope).unsqueeze(1)
        s_k = torch.exp(self.log_k).unsqueeze(1)
        geo = (
            s_k * rho * -torch.expm1(beyond * self.slope.unsqueeze(1)) / (1 - rho).clamp(min=1e-300)
        )
        tail = torch.where(rho >= 1.0, s_k * beyond, geo)
        return direct + torch.where(beyond > 0, tail, torch.zeros_like(tail))


# --------------------------------------------------------------------------- costs


def _snap_tensor(r: torch.Tensor) -> torch.Tensor:
    k = torch.round(r)
    return torch.where((r - k).abs() <= SNAP_RTOL * r.abs().clamp(min=1.0), k, r)


def leaf_costs(ps: PowerSums, r: torch.Tensor) -> torch.Tensor:
    """Expected draws per output of the flat round at each exponent r (R,) -> (B, R); inf for
    r < 1."""
    r = _snap_tensor(r.to(torch.float64))
    n = torch.floor(r)
    a = r - n
    factory = torch.where(a > 0, torch.exp(ps.log_s((r - 1).clamp(min=0))), 0.0)
    per_round = 1.0 + ps.collision_sum(n.clamp(min=1)) + factory
    cost = per_round * torch.exp(-ps.log_s(r))
    return torch.where(r >= 1.0, cost, float("inf"))


def tree_cost(tree: Tree, ps: PowerSums) -> torch.Tensor:
    """Expected draws per output (float64 (B,)) of ``tree`` under the power sums ``ps``."""
    nodes = tree.nodes()
    exps = torch.tensor([t.s for t in nodes], dtype=torch.float64)
    log_s = ps.log_s(exps)  # (B, nodes)
    flat = leaf_costs(ps, exps)
    index = {id(t): i for i, t in enumerate(nodes)}
    cost: dict[int, torch.Tensor] = {}
    for i, t in enumerate(nodes):
        if t.is_leaf:
            cost[id(t)] = flat[:, i]
        else:
            li, ri = index[id(t.left)], index[id(t.right)]
            ratio = torch.exp(log_s[:, li] + log_s[:, ri] - log_s[:, i])
            cost[id(t)] = (cost[id(t.left)] + cost[id(t.right)]) * ratio
    return cost[id(tree)]


def acceptance(tree: Tree, ps: PowerSums) -> dict[int, torch.Tensor]:
    """Per node id: the probability (B,) that a pair is kept, S(a+b) / (S(a) S(b))."""
    nodes = [t for t in tree.nodes() if not t.is_leaf]
    if not nodes:
        return {}
    exps = torch.tensor(
        [[t.s, t.parts[0].s, t.parts[1].s] for t in nodes], dtype=torch.float64
    ).flatten()
    ls = ps.log_s(exps).view(-1, len(nodes), 3)
    rate = torch.exp(ls[..., 0] - ls[..., 1] - ls[..., 2]).clamp(max=1.0)
    return {id(t): rate[:, i] for i, t in enumerate(nodes)}


def plan_tree(ps: PowerSums, s: float) -> tuple[Tree, torch.Tensor]:
    """The cheapest tree for exponent s >= 1 under ``ps`` and its cost per output (B,).

    Dynamic programming: with s' = s / 2^k <= ``GRID_MAX_EXPONENT`` and the grid r_j = j s' / M
    (M = 2 ceil(s' / (2 ``GRID_STEP``)), even so that s'/2 is on the grid),
    c(r_j) = min(leaf cost, min over i of (c(r_i) + c(r_{j-i})) S(r_i) S(r_{j-i}) / S(r_j));
    then k halving steps up to s. With several
    problems (B > 1) one tree serves all of them, chosen by the summed cost (a heuristic: the best
    tree for the sum need not decompose). Ties go to the flat round. O(M^2) work, M <= 480.
    """
    s = snap(float(s))
    if not math.isfinite(s) or s < 1.0:
        raise ValueError(f"the planner needs a finite exponent s = 1/T >= 1, got {s}")
    if s <= 2.0:  # the only split, 1 + 1 at s = 2, costs the same as the flat round
        return leaf(s), leaf_costs(ps, torch.tensor([s]))[:, 0]
    base, halvings = s, 0
    while base > GRID_MAX_EXPONENT:
        base /= 2.0
        halvings += 1
    m = 2 * max(1, math.ceil(base / (2 * GRID_STEP) - 1e-9))  # even: the halves are on the grid
    h = base / m
    r = _snap_tensor(h * torch.arange(1, m + 1, dtype=torch.float64))
    log_s = ps.log_s(r)  # (B, M)
    flat = leaf_costs(ps, r)
    cost = flat.clone()
    choice = [0] * (m + 1)
    i_min = max(1, math.ceil((1.0 - SNAP_RTOL) / h))
    while i_min > 1 and float(r[i_min - 2]) >= 1.0:
        i_min -= 1
    while float(r[i_min - 1]) < 1.0:
        i_min += 1
    for j in range(2 * i_min, m + 1):
        i = torch.arange(i_min, j // 2 + 1)
        ratio = torch.exp(log_s[:, i - 1] + log_s[:, j - i - 1] - log_s[:, j - 1 : j])
        cand = (cost[:, i - 1] + cost[:, j - i - 1]) * ratio
        total = cand.sum(0)
        best = int(torch.argmin(total))
        if bool(total[best] < flat[:, j - 1].sum() * (1 - 1e-9)):
            cost[:, j - 1] = cand[:, best]
            choice[j] = int(i[best])
    built: dict[int, Tree] = {}

    def build(j: int) -> Tree:
        if j not in built:
            i = choice[j]
            built[j] = leaf(float(r[j - 1])) if i == 0 else pair(build(i), build(j - i))
        return built[j]

    tree, c = build(m), cost[:, m - 1]
    for _ in range(halvings):
        up = tree.s * 2.0
        ex = torch.tensor([tree.s, up], dtype=torch.float64)
        ls = ps.log_s(ex)
        doubled = 2.0 * c * torch.exp(2 * ls[:, 0] - ls[:, 1])
        flat_up = leaf_costs(ps, ex[1:])[:, 0]
        if bool(doubled.sum() < flat_up.sum()):
            tree, c = pair(tree, tree), doubled
        else:
            tree, c = leaf(up), flat_up
    if tree.s != s:
        tree = rescale(tree, s / tree.s)
    return tree, c
