"""Request: what one ``temperature_sample`` call asked for, validated, as one frozen record."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import (
    DrawBudgetExceeded,
    InvalidArgumentTypeError,
    InvalidOptionError,
    InvalidTemperatureError,
)
from .options import DEFAULT_MAX_DRAWS_PER_OUTPUT, REFERENCE_NUM_SAMPLES, SampleOptions
from .plan import Tree, resolve_plan
from .validation import inverse_temperature

#: No exact run is started whose least possible cost exceeds this many draws (float64 counts).
MAX_FEASIBLE_DRAWS = 2**53

KeyName = str | Callable[[], str | None] | None


@dataclass(frozen=True)
class Request:
    """A validated call: temperature T, s = 1/T, the sampling options, the explicit tree (None
    for plan="auto"/"flat" resolved later, or T > 1), whether ``draw`` is batched, the key's
    name for diagnostics, and the caller's advice for warnings (an adapter's: what to change
    when temperature cannot act; None: the generic "coarser key" advice)."""

    temperature: float
    s: float
    options: SampleOptions
    fixed_tree: Tree | None
    batched: bool
    key_name: KeyName
    advice: str | None = None

    @classmethod
    def make(
        cls,
        t: float,
        options: SampleOptions,
        *,
        batched: bool,
        key_name: KeyName,
        advice: str | None = None,
    ) -> Request:
        """Check the combination of T and options (single options are checked by
        :class:`SampleOptions`)."""
        if options.method == "exact" and t > 1.0:
            raise InvalidTemperatureError(
                f'method="exact" needs T <= 1 (got T={t}): sharpening is exact, but flattening '
                "needs P(x)^(1/T - 1), an unbounded factor that no algorithm using only samples "
                'can produce. Use method="batch" (approximate, any T > 0) or method="auto".'
            )
        if not options.estimate_accuracy and (
            options.method == "auto" or options.num_samples == "auto"
        ):
            raise InvalidOptionError(
                "estimate_accuracy=False needs method='batch' with a fixed num_samples (or "
                "method='exact', whose results are exact): method='auto' and num_samples='auto' "
                "choose by the estimate. Pass method='batch', num_samples=N, or drop "
                "estimate_accuracy=False."
            )
        if key_name is not None and not isinstance(key_name, str) and not callable(key_name):
            raise InvalidArgumentTypeError(
                f"key_name must be a str, a callable returning one, or None, got "
                f"{type(key_name).__name__}"
            )
        s = inverse_temperature(t)
        fixed = None
        if t <= 1.0 and math.isfinite(s):
            fixed = resolve_plan(options.plan, s)  # validates explicit trees early
        if advice is not None and not isinstance(advice, str):
            raise InvalidArgumentTypeError(
                f"advice must be a str or None, got {type(advice).__name__}"
            )
        return cls(t, s, options, fixed, batched, key_name, advice)

    @property
    def num_outputs(self) -> int:
        return self.options.num_outputs

    @property
    def pool_size(self) -> int:
        """num_samples as an int: REFERENCE_NUM_SAMPLES for num_samples="auto" (it then sizes
        the pilot, the default budget and a first attempt; the N run is chosen from a pilot)."""
        n = self.options.num_samples
        return REFERENCE_NUM_SAMPLES if n == "auto" else int(n)

    @property
    def chooses_n(self) -> bool:
        """N is chosen from a pilot: method="auto", or num_samples="auto"."""
        return self.options.method == "auto" or self.options.num_samples == "auto"

    @property
    def batch_only(self) -> bool:
        """method="batch" with num_samples="auto": auto's choice of N, exact excluded."""
        return self.options.method == "batch" and self.options.num_samples == "auto"

    @property
    def max_draws(self) -> int | None:
        return self.options.max_draws

    def least_draws(self) -> float:
        """The fewest draws one output can cost with the plan (an accepted flat round at r draws
        ceil(r) times; every plan needs at least 1/T)."""
        if self.fixed_tree is not None:
            return self.fixed_tree.min_draws
        return float(math.ceil(self.s)) if math.isfinite(self.s) else math.inf

    def budget(self, draws: int, num_problems: int) -> int:
        """max_draws, or the default budget counted from ``draws`` already spent."""
        if self.max_draws is not None:
            return self.max_draws
        return draws + DEFAULT_MAX_DRAWS_PER_OUTPUT * self.num_outputs * num_problems

    def row_budget(self, row_draws: torch.Tensor) -> torch.Tensor:
        """Per-row generators: each problem's budget (host LongTensor (B,)) against its own
        draws ``row_draws``: max_draws per problem, or the default counted from now."""
        if self.max_draws is not None:
            return torch.full_like(row_draws, self.max_draws)
        return row_draws + DEFAULT_MAX_DRAWS_PER_OUTPUT * self.num_outputs

    def batch_draws(self, num_problems: int) -> int:
        """The batch method's draws: N per output (N in all with share_pool), per problem."""
        o = self.options
        return self.pool_size * (1 if o.share_pool else o.num_outputs) * num_problems

    def check_least_cost(self, draws: int, calls: int, num_problems: int) -> None:
        """Refuse at once when even the cheapest possible exact run cannot fit (e.g. T -> 0)."""
        least = self.least_draws() * self.num_outputs * num_problems
        if least <= self.budget(draws, num_problems) and least <= MAX_FEASIBLE_DRAWS:
            return
        what = (
            f"max_draws={self.max_draws}"
            if self.max_draws is not None
            else (f"the default budget of {DEFAULT_MAX_DRAWS_PER_OUTPUT:.0e} draws per output")
        )
        if least > MAX_FEASIBLE_DRAWS:
            what = f"any feasible run ({MAX_FEASIBLE_DRAWS:.1e} draws)"
        raise DrawBudgetExceeded(
            f"at T={self.temperature:.3g} every exact output costs at least "
            f"{self.least_draws():.3g} base draws (1/T = {self.s:.3g}), {least:.3g} in all: "
            f"beyond {what}. As T -> 0, P_T tends to the most likely outcomes; "
            'method="batch" (or "auto") returns the most frequent outcome of its pool there. '
            "Raise max_draws to run exact anyway.",
            {"draws": draws, "model_calls": calls},
        )
