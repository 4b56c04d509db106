"""The result object returned by temperature_sample and TemperatureSampler.sample."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .accuracy import Accuracy
from .diagnostics import Diagnostics


@dataclass(repr=False)
class TemperatureResult:
    """Chosen samples and how they were obtained.

    samples:  the chosen samples in the type ``draw`` returned (tensor, ndarray or list), leading
              dim num_outputs; batched runs: (B, num_outputs, ...).
    keys:     their keys, LongTensor (num_outputs,) or (num_outputs, d); batched: leading B.
    method:   the method that produced them, "exact" or "batch" (``requested_method`` says what
              was asked for, e.g. "auto"); "mixed" when, with one generator per problem, auto
              chose differently for different problems (``extra["methods"]`` lists each
              problem's method; ``plan`` then lists the trees run, and ``reason`` each group's).
    draws:    base samples drawn in total (every problem, pilot included).
    model_calls: number of ``draw`` calls.
    rounds / accepted_rounds / rejected_rounds / abandoned_rounds: exact method bookkeeping.
    cascade_level: batch method, float64 (num_outputs,) (batched (B, num_outputs)): the power s
              actually used; below 1/T where no outcome of the batch qualified (N too small).
    cascade_depth: batch method, how many levels the cascade stepped down (0 = none).
    reason:   method="auto": why exact or batch was chosen.
    plan:     the collision tree the exact method ran, in the notation of
              :func:`~.plan.format_tree` (e.g. "2", "2+2", "2*(1.5+1.5)"); None for batch.
    pilot_draws: base draws of the planning pilot (counted in ``draws``); 0 when no pilot ran.
    expected_draws: the pilot's estimate of the exact method's draws (pilot not included);
              None without a pilot estimate.
    batched:  whether ``draw`` was batched (leading dim B on samples, keys, cascade levels).
    extra:    method-specific leftovers (e.g. the exact trees' pair counts); no core field.
    diagnostics: :class:`~.diagnostics.Diagnostics`: distinct keys and singleton share of the
              batch pools (or of the exact method's first draws) and the cascade levels, to tell
              whether temperature had anything to act on.
    accuracy: :class:`~.accuracy.Accuracy`: the estimated TV to P^(1/T) (0 for exact), an upper
              bound at a stated confidence, how they were obtained, and the tolerance asked for;
              ``estimated_tv`` is its estimate.

    ``repr(result)`` shows shapes and counts, never the samples themselves.
    """

    samples: Any
    keys: torch.Tensor
    method: str
    temperature: float
    draws: int
    model_calls: int
    requested_method: str
    num_outputs: int
    rounds: int | None = None
    accepted_rounds: int | None = None
    rejected_rounds: int | None = None
    abandoned_rounds: int | None = None
    max_lanes_used: int | None = None
    cascade_level: torch.Tensor | None = None
    cascade_depth: torch.Tensor | None = None
    reason: str | None = None
    plan: str | None = None
    pilot_draws: int = 0
    expected_draws: float | None = None
    batched: bool = False
    diagnostics: Diagnostics | None = None
    accuracy: Accuracy | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated_tv(self) -> float:
        """The estimated TV between the law of the returned outcomes and P^(1/T): 0.0 for exact
        results, the batch estimate otherwise (the worst problem's), NaN when unknown (see
        ``accuracy``)."""
        return math.nan if self.accuracy is None else self.accuracy.estimate

    @property
    def draws_per_output(self) -> float:
        """Base draws spent per returned sample (over all problems)."""
        b = self.keys.shape[0] if self.keys.dim() >= 2 and self.batched else 1
        return self.draws / (self.num_outputs * b)

    def summary(self) -> str:
        """One line for logs: method, draws, and the method's own figures."""
        parts = [
            f"method={self.method}",
            f"T={self.temperature:g}",
            f"draws={self.draws}",
            f"calls={self.model_calls}",
        ]
        if self.rounds is not None:
            parts.append(f"rounds={self.rounds}")
        if self.cascade_depth is not None:
            parts.append(f"cascade_steps_max={int(self.cascade_depth.max())}")
        if self.accuracy is not None:
            parts.append(f"estimated_tv={self.accuracy.estimate:.3g}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        return " ".join(parts)

    def __repr__(self) -> str:
        parts = [
            f"method={self.method!r}",
            f"temperature={self.temperature:g}",
            f"samples={_describe(self.samples)}",
            f"keys={_describe(self.keys)}",
            f"num_outputs={self.num_outputs}",
            f"draws={self.draws}",
            f"model_calls={self.model_calls}",
        ]
        if self.requested_method != self.method:
            parts.append(f"requested_method={self.requested_method!r}")
        if self.rounds is not None:
            parts.append(f"rounds={self.rounds} (accepted {self.accepted_rounds})")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        if self.diagnostics is not None:
            parts.append(f"diagnostics={self.diagnostics!r}")
        return "TemperatureResult(" + ", ".join(parts) + ")"


def _describe(obj: Any) -> str:
    """Type and shape of a samples/keys object, never its values."""
    if isinstance(obj, torch.Tensor):
        return f"Tensor(shape={tuple(obj.shape)}, dtype={obj.dtype}, device={obj.device})"
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return f"{type(obj).__name__}(shape={tuple(shape)}, dtype={getattr(obj, 'dtype', '?')})"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__} of {len(obj)}"
    return type(obj).__name__
