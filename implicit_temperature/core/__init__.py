"""The model-agnostic core: torch only, no model code.

exact sampler (collision + Bernoulli factory, vectorised lanes; collision trees and their
planner), batch selection (generalised binomial cascade), keys, cost formulas, results and errors.

The names below are imported on first use (PEP 562): ``implicit_temperature.core.options`` and
``.errors`` can be imported without torch (``itemp sample --help`` builds its flags from them).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AUTO_BUDGET_FACTOR": ".decide",
    "Accuracy": ".accuracy",
    "AccuracyWarning": ".errors",
    "InaccurateResultError": ".errors",
    "batch_tv": ".batch_law",
    "estimate": ".estimate",
    "estimate_batch_tv": ".accuracy",
    "BatchSelection": ".batch",
    "DEFAULT_MAX_DRAWS_PER_OUTPUT": ".options",
    "DEFAULT_MAX_LANES": ".options",
    "Diagnostics": ".diagnostics",
    "DrawBudgetExceeded": ".errors",
    "ExactCost": ".cost",
    "IgnoredSeedWarning": ".errors",
    "ImplicitTemperatureError": ".errors",
    "InvalidArgumentError": ".errors",
    "InvalidArgumentTypeError": ".errors",
    "InvalidKeysError": ".errors",
    "InvalidOptionError": ".errors",
    "InvalidPlanError": ".plan",
    "InvalidTemperatureError": ".errors",
    "METHODS": ".options",
    "OptionTypeError": ".errors",
    "SampleOptions": ".options",
    "SamplerOutputError": ".errors",
    "TemperatureResult": ".result",
    "TemperatureWarning": ".errors",
    "Tree": ".plan",
    "UnknownOptionError": ".errors",
    "batch_selection": ".batch",
    "estimate_exact_draws": ".planner",
    "exact_rows": ".keys",
    "expected_exact_cost": ".planner",
    "expected_exact_draws": ".planner",
    "format_tree": ".plan",
    "group_counts": ".grouping",
    "parse_tree": ".plan",
    "select_from_batch": ".batch",
    "selection_probabilities": ".batch",
    "temperature_sample": ".api",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .accuracy import Accuracy, estimate_batch_tv  # noqa: F401
    from .api import (  # noqa: F401
        AUTO_BUDGET_FACTOR,
        temperature_sample,
    )
    from .batch import (  # noqa: F401
        BatchSelection,
        batch_selection,
        select_from_batch,
        selection_probabilities,
    )
    from .batch_law import batch_tv  # noqa: F401
    from .cost import (  # noqa: F401
        ExactCost,
    )
    from .diagnostics import (  # noqa: F401
        Diagnostics,
    )
    from .errors import (  # noqa: F401
        AccuracyWarning,
        DrawBudgetExceeded,
        ImplicitTemperatureError,
        InaccurateResultError,
        InvalidKeysError,
        InvalidOptionError,
        InvalidTemperatureError,
        OptionTypeError,
        SamplerOutputError,
        TemperatureWarning,
        UnknownOptionError,
    )
    from .estimate import estimate  # noqa: F401
    from .grouping import (  # noqa: F401
        group_counts,
    )
    from .keys import (  # noqa: F401
        exact_rows,
    )
    from .options import (  # noqa: F401
        DEFAULT_MAX_DRAWS_PER_OUTPUT,
        DEFAULT_MAX_LANES,
        METHODS,
        SampleOptions,
    )
    from .plan import (  # noqa: F401
        InvalidPlanError,
        Tree,
        format_tree,
        parse_tree,
    )
    from .planner import (  # noqa: F401
        estimate_exact_draws,
        expected_exact_cost,
        expected_exact_draws,
    )
    from .result import (  # noqa: F401
        TemperatureResult,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)  # a submodule: core.exact, ...
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
