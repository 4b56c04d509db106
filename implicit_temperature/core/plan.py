"""Collision trees: their notation (the ``plan=`` strings), parsing and formatting.

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

What a tree costs is in :mod:`.cost` (power sums and the cost formulas); the planner that picks
the cheapest tree is in :mod:`.planner`. This module needs neither (nor torch).
"""

from __future__ import annotations

import importlib
import math
import re
import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .errors import ImplicitTemperatureError, InvalidArgumentError, InvalidArgumentTypeError

#: Relative distance within which an exponent is snapped to the nearest integer.
SNAP_RTOL = 1e-9


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
            raise InvalidArgumentError("a leaf of a collision tree has no children")
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


def _tokens(text: str) -> list[tuple[str, str]]:
    """The tokens of a plan: ("num", digits) or ("op", one of ``+*()/``)."""
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
    return tokens


class _Parser:
    """Recursive descent over the tokens of one plan: expr = term ('+' term)*, term = k '*' term
    | factor, factor = '(' expr ')' | number ['/' number]."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise InvalidPlanError(f"plan {self.text!r} ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def number(self) -> float:
        kind, value = self.take()
        if kind != "num":
            raise InvalidPlanError(f"expected a number in plan {self.text!r}, got {value!r}")
        x = float(value)
        if self.peek() == ("op", "/"):
            self.take()
            kind, value = self.take()
            if kind != "num" or float(value) == 0:
                raise InvalidPlanError(f"bad fraction in plan {self.text!r}")
            x = x / float(value)
        return x

    def factor(self) -> Tree:
        if self.peek() == ("op", "("):
            self.take()
            t = self.expr()
            if self.take() != ("op", ")"):
                raise InvalidPlanError(f"missing ')' in plan {self.text!r}")
            return t
        return leaf(self.number())

    def term(self) -> Tree:
        tok = self.peek()
        if tok is not None and tok[0] == "num" and self.peek(1) == ("op", "*"):
            k = float(self.take()[1])
            self.take()
            if k != int(k) or k < 1:
                raise InvalidPlanError(f"a repeat count must be an integer >= 1 in {self.text!r}")
            return repeat(int(k), self.term())
        return self.factor()

    def expr(self) -> Tree:
        t = self.term()
        while self.peek() == ("op", "+"):
            self.take()
            t = pair(t, self.term())
        return t


def parse_tree(text: str) -> Tree:
    """Parse the notation of the module docstring (leaves are not rescaled here)."""
    parser = _Parser(text)
    if not text.strip():
        raise InvalidPlanError("empty plan; use 'auto', 'flat' or a tree such as '(2+2)+(3+3)'")
    tree = parser.expr()
    if parser.pos != len(parser.tokens):
        raise InvalidPlanError(f"unexpected {parser.tokens[parser.pos][1]!r} in plan {text!r}")
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
        raise InvalidArgumentTypeError(
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


#: Names that lived here before the cost formulas and the planner had modules of their own
#: (resolved lazily: both import this module, never the other way).
_MOVED = {
    "PowerSums": ".cost",
    "LawPowerSums": ".cost",
    "PilotPowerSums": ".cost",
    "PILOT_MAX_POWER": ".cost",
    "leaf_costs": ".cost",
    "tree_cost": ".cost",
    "acceptance": ".cost",
    "plan_tree": ".planner",
    "GRID_STEP": ".planner",
    "GRID_MAX_EXPONENT": ".planner",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __package__), name)
