"""The model-agnostic core: torch only, no model code.

exact sampler (collision + Bernoulli factory, vectorised lanes; collision trees and their
planner), batch selection (generalised binomial cascade), keys, cost formulas, results and errors.
"""

from .api import AUTO_BUDGET_FACTOR, METHODS, temperature_sample
from .batch import BatchSelection, batch_selection, select_from_batch, selection_probabilities
from .cost import ExactCost, estimate_exact_draws, expected_exact_cost, expected_exact_draws
from .diagnostics import Diagnostics
from .errors import (
    DrawBudgetExceeded,
    IgnoredSeedWarning,
    ImplicitTemperatureError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidKeysError,
    InvalidTemperatureError,
    SamplerOutputError,
    TemperatureWarning,
)
from .exact import DEFAULT_MAX_DRAWS_PER_OUTPUT, DEFAULT_MAX_LANES
from .grouping import group_counts
from .keys import exact_rows
from .plan import InvalidPlanError, Tree, format_tree, parse_tree
from .result import TemperatureResult

__all__ = [
    "AUTO_BUDGET_FACTOR",
    "DEFAULT_MAX_DRAWS_PER_OUTPUT",
    "DEFAULT_MAX_LANES",
    "METHODS",
    "BatchSelection",
    "Diagnostics",
    "DrawBudgetExceeded",
    "ExactCost",
    "IgnoredSeedWarning",
    "ImplicitTemperatureError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidKeysError",
    "InvalidPlanError",
    "InvalidTemperatureError",
    "SamplerOutputError",
    "TemperatureResult",
    "TemperatureWarning",
    "Tree",
    "batch_selection",
    "estimate_exact_draws",
    "exact_rows",
    "expected_exact_cost",
    "expected_exact_draws",
    "format_tree",
    "group_counts",
    "parse_tree",
    "select_from_batch",
    "selection_probabilities",
    "temperature_sample",
]
