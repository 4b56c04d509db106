"""SampleOptions: every sampling keyword of :func:`temperature_sample`, in one place.

Each option is one field of a frozen dataclass, with its default, its validator and its help
text (field metadata). Everything else is derived from it: the keywords that
``temperature_sample``, ``TemperatureSampler.sample`` and CALM ``generate`` accept, the list of
sampling keywords the plugins use for hints and "did you mean", and the ``itemp sample`` flags
with their help defaults. Adding an option is adding a field here.

This module imports neither torch nor the rest of the core, so that ``itemp sample --help``
stays torch-free.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import InvalidOptionError, OptionTypeError, UnknownOptionError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .plan import Tree

Method = Literal["auto", "exact", "batch"]
Estimator = Literal["auto", "binomial", "plugin", "jackknife"]
METHODS: tuple[str, ...] = get_args(Method)
ESTIMATORS: tuple[str, ...] = get_args(Estimator)

#: Exact method: most rounds run side by side per problem (one draw each per step).
DEFAULT_MAX_LANES = 1024
#: Exact method without max_draws: the budget is this many base draws per output and problem.
DEFAULT_MAX_DRAWS_PER_OUTPUT = 1_000_000
#: The default tolerance: the TV to P^(1/T) that method="auto" must reach, and above which a
#: result warns (AccuracyWarning). 0.05 is where the batch rule at N = 200 passes on peaked laws
#: (TV ~0.01) and fails on spread ones (0.1-0.6, issue 16), so the default call warns exactly
#: where the answer is visibly not P^(1/T); a tighter default would push most spread-law calls
#: to 10-100x the draws, a looser one would stay silent at errors a histogram shows.
DEFAULT_TOLERANCE = 0.05
#: num_samples="auto": the reference pool size that sizes the pilot and auto's default budget
#: (AUTO_BUDGET_FACTOR x this per output) when N itself is chosen from the pilot.
REFERENCE_NUM_SAMPLES = 200
OnInaccurate = Literal["warn", "raise"]
ON_INACCURATE: tuple[str, ...] = get_args(OnInaccurate)

Validator = Callable[[str, Any], Any]


# --- validators: one copy each; errors derive from ImplicitTemperatureError and the builtin ---


def is_positive_int(value: Any) -> bool:
    """Whether ``value`` is an integer >= 1 (bools are not integers here). The one test behind
    :func:`positive_int`, for callers that raise their own error (a quantizer's, a job's) or
    name the fix in their own words."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and int(value) >= 1


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1 (TypeError for a non-integer, ValueError below 1)."""
    if is_positive_int(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionTypeError(
            f"{name} must be an integer >= 1, got {type(value).__name__} {value!r}"
        )
    if int(value) < 1:
        raise InvalidOptionError(f"{name} must be >= 1 (an integer), got {value!r}")
    return int(value)


def pool_size(name: str, value: Any) -> int | str:
    """An int >= 1, or "auto" (N chosen from a pilot to meet the tolerance)."""
    if isinstance(value, str) and value == "auto":
        return "auto"
    if is_positive_int(value):
        return int(value)
    if isinstance(value, str):
        raise InvalidOptionError(
            f"{name} must be an integer >= 1 or 'auto', got {value!r}"
            f"{did_you_mean(value, ['auto'])}"
        )
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        raise InvalidOptionError(f"{name} must be >= 1 (an integer, or 'auto'), got {value!r}")
    raise OptionTypeError(
        f"{name} must be an integer >= 1 or 'auto', got {type(value).__name__} {value!r}"
    )


def optional_positive_int(name: str, value: Any) -> int | None:
    """None, or ``value`` as an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionTypeError(f"{name} must be an integer >= 1 or None, got {value!r}")
    if int(value) < 1:
        raise InvalidOptionError(f"{name} must be >= 1 (or None), got {value!r}")
    return int(value)


def one_of(choices: Iterable[str]) -> Validator:
    """A validator accepting exactly the strings in ``choices``."""
    allowed = tuple(choices)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise InvalidOptionError(
                f"{name} must be one of {allowed}, got {value!r}{did_you_mean(value, allowed)}"
            )
        return value

    check.choices = allowed  # type: ignore[attr-defined]  # for the CLI's choices=
    return check


def tolerance_value(name: str, value: Any) -> float:
    """A real number in (0, 1] (a total-variation distance)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionTypeError(f"{name} must be a number in (0, 1], got {value!r}")
    v = float(value)
    if not 0.0 < v <= 1.0:
        raise InvalidOptionError(f"{name} must be in (0, 1] (a TV distance), got {value!r}")
    return v


def flag(name: str, value: Any) -> bool:
    """A bool (0 and 1 accepted as False and True)."""
    if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise OptionTypeError(f"{name} must be True or False, got {value!r}")


def plan_value(name: str, value: Any) -> Any:
    """'auto', 'flat', a tree string or a :class:`~.plan.Tree` (parsed later, against 1/T)."""
    if isinstance(value, str):
        return value
    from .plan import Tree  # torch-free callers never pass a Tree

    if isinstance(value, Tree):
        return value
    raise OptionTypeError(f"{name} must be 'auto', 'flat' or a tree string, got {value!r}")


def _one_generator(value: Any) -> bool:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return True
    return type(value).__name__ == "Generator" and hasattr(value, "manual_seed")


def generator_value(name: str, value: Any) -> Any:
    """A torch.Generator, an int seed or None (seeds are range-checked when used); or, for
    batched calls, a list or tuple of them, one per problem (see :mod:`.rows`)."""
    if value is None or _one_generator(value):
        return value
    if isinstance(value, (list, tuple)) and all(_one_generator(v) for v in value):
        return tuple(value)
    raise OptionTypeError(
        f"{name} must be a torch.Generator, an int seed or None (or, with batched=True, a list "
        f"of them, one per problem), got {type(value).__name__}"
    )


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """'; did you mean 'x'?' for the closest candidate, or ''."""
    close = difflib.get_close_matches(str(name), sorted(set(candidates)), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def option(default: Any, check: Validator, help: str, *, cli: str | None = None) -> Any:
    """A SampleOptions field. ``cli``: the ``itemp sample`` metavar when it is also a flag."""
    return field(default=default, metadata={"check": check, "help": help, "cli": cli})


@dataclass(frozen=True)
class SampleOptions:
    """The sampling keywords of :func:`temperature_sample` (validated on construction).

    ``SampleOptions.from_kwargs(kwargs, where=...)`` builds one from keywords, refusing unknown
    names with :class:`UnknownOptionError` and the closest valid one.
    """

    method: Method = option(
        "auto",
        one_of(METHODS),
        "'auto' plans from a pilot and picks exact where it fits the budget, else batch; "
        "'exact' (T <= 1, exact P^(1/T), random cost); 'batch' (any T, approximate, N draws "
        "per output)",
        cli="METHOD",
    )
    plan: str | Tree = option(
        "auto",
        plan_value,
        "exact method's collision tree: 'auto' (planned from a pilot), 'flat', or a tree such "
        "as '2+2' or '2*(1.5+1.5)' whose leaves add up to 1/T",
        cli="PLAN",
    )
    num_samples: int | Literal["auto"] = option(
        REFERENCE_NUM_SAMPLES,
        pool_size,
        "N of the batch method and the largest pilot of 'auto'; 'auto': N chosen from a pilot "
        f"to meet the tolerance (batch; the pilot and budget then use N = {REFERENCE_NUM_SAMPLES})",
        cli="N",
    )
    num_outputs: int = option(
        1, positive_int, "independent outputs per problem (and temperature)", cli="K"
    )
    max_draws: int | None = option(
        None,
        optional_positive_int,
        "exact/auto budget of base draws, pilot included; an overrun raises "
        f"DrawBudgetExceeded (None: {DEFAULT_MAX_DRAWS_PER_OUTPUT:,} per output)",
        cli="D",
    )
    generator: torch.Generator | int | None = option(
        None,
        generator_value,
        "torch.Generator or int seed: the same seed gives the same result (batched: a "
        "list, one per problem: each row then depends on its own only, any method)",
    )
    share_pool: bool = option(
        False, flag, "batch method: one pool of N for all outputs (fewer draws; correlated)"
    )
    max_lanes: int = option(
        DEFAULT_MAX_LANES, positive_int, "exact method: most rounds run side by side per problem"
    )
    estimator: Estimator = option(
        "auto",
        one_of(ESTIMATORS),
        "batch method weights: 'binomial' (C(c, 1/T)), 'jackknife' (binomial with its 1/N bias "
        "removed: far fewer draws for the same accuracy on spread laws), 'plugin' ((c/N)^(1/T)) "
        "or 'auto' (default: binomial; auto chooses its N. The jackknife is never chosen on its "
        "own: its error estimate can be several times too low at low T on spread laws)",
    )
    estimate_accuracy: bool = option(
        True,
        flag,
        "batch method with a fixed num_samples: estimate the result's TV to P^(1/T) from its "
        "pools (res.accuracy, AccuracyWarning). The estimate simulates ~256 pooled draws per "
        "draw of the pool: on a cheap model it costs more than the draws. False skips it "
        "(res.accuracy then says 'not estimated' and nothing warns); auto and "
        "num_samples='auto' decide by the estimate and refuse False",
    )
    progress: bool = option(False, flag, "show the exact method's progress (tqdm or log lines)")
    tolerance: float = option(
        DEFAULT_TOLERANCE,
        tolerance_value,
        "the TV to P^(1/T) auto must reach (cheapest method within the budget); a result whose "
        "estimated TV exceeds it raises AccuracyWarning",
        cli="TV",
    )
    on_inaccurate: OnInaccurate = option(
        "warn",
        one_of(ON_INACCURATE),
        "when the estimated TV exceeds the tolerance: 'warn' (AccuracyWarning, the best "
        "attempt is returned) or 'raise' (InaccurateResultError, holding it)",
    )

    dry_run: bool = option(
        False,
        flag,
        "run only the pilot and return it.estimate's report (planned draws and estimated TV of "
        "each method, auto's decision) instead of sampling",
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = f.metadata["check"](f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keywords of :func:`temperature_sample` (a shallow copy)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Option name -> default."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of option ``name``."""
        return str(_field(name).metadata["help"])

    @classmethod
    def from_kwargs(
        cls,
        kwargs: Mapping[str, Any],
        *,
        where: str = "temperature_sample()",
        base: SampleOptions | None = None,
        exclude: Iterable[str] = (),
    ) -> SampleOptions:
        """Options from keywords (over ``base`` when given); unknown or excluded names raise
        :class:`UnknownOptionError` naming the closest valid one."""
        allowed = set(cls.names()) - set(exclude)
        for name in kwargs:
            if name not in allowed:
                raise UnknownOptionError(
                    f"{where} got an unknown keyword {name!r}{did_you_mean(name, allowed)} "
                    f"(its sampling options: {', '.join(sorted(allowed))})"
                )
        if base is None:
            return cls(**kwargs)
        return dataclasses.replace(base, **kwargs)


def _field(name: str) -> dataclasses.Field[Any]:
    for f in dataclasses.fields(SampleOptions):
        if f.name == name:
            return f
    raise KeyError(name)


#: every keyword of ``temperature_sample``/``sample()`` that belongs to sampling (not to an
#: adapter's constructor): the options, plus the temperature itself.
SAMPLE_KEYWORDS: frozenset[str] = frozenset({"temperature", *SampleOptions.names()})


@dataclass(frozen=True)
class CliOption:
    """An option that is also an ``itemp sample`` flag (``--num-samples`` for num_samples):
    its metavar, default, help, choices (for one_of options) and whether it is an integer (or
    the word "auto": ``or_auto``) or a real number."""

    name: str
    metavar: str
    default: Any
    help: str
    choices: tuple[str, ...] | None
    integer: bool
    real: bool = False
    or_auto: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def cli_options() -> list[CliOption]:
    """The options that are ``itemp sample`` flags, in declaration order."""
    out = []
    for f in dataclasses.fields(SampleOptions):
        meta = f.metadata
        if meta["cli"] is not None:
            check = meta["check"]
            integer = check in (positive_int, optional_positive_int, pool_size)
            choices = getattr(check, "choices", None)
            real = check is tolerance_value
            out.append(
                CliOption(
                    f.name,
                    meta["cli"],
                    f.default,
                    meta["help"],
                    choices,
                    integer,
                    real,
                    or_auto=check is pool_size,
                )
            )
    return out


def keyword_signature(fn: Callable[..., Any], *, exclude: Iterable[str] = ()) -> Any:
    """``fn``'s signature with its ``**options`` replaced by the SampleOptions keywords (so that
    ``help()``, IDEs and :func:`inspect.signature` show every option with its default)."""
    import inspect

    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    taken = {p.name for p in params} | set(exclude)
    for f in dataclasses.fields(SampleOptions):
        if f.name not in taken:
            params.append(
                inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
            )
    return sig.replace(parameters=params)


__all__ = [
    "DEFAULT_MAX_DRAWS_PER_OUTPUT",
    "DEFAULT_MAX_LANES",
    "DEFAULT_TOLERANCE",
    "REFERENCE_NUM_SAMPLES",
    "ESTIMATORS",
    "ON_INACCURATE",
    "METHODS",
    "SAMPLE_KEYWORDS",
    "Estimator",
    "Method",
    "CliOption",
    "SampleOptions",
    "cli_options",
    "did_you_mean",
    "flag",
    "is_positive_int",
    "keyword_signature",
    "one_of",
    "optional_positive_int",
    "pool_size",
    "positive_int",
]
