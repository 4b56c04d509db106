"""``JobSpec``: everything that describes a sampling job, validated, and its manifest form."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.options import DEFAULT_TOLERANCE, is_positive_int
from .errors import JobError
from .limits import check_limit

METHODS = ("auto", "exact", "batch")
#: Bumped when the results format or the seeding changes (a manifest of another version is refused).
FORMAT_VERSION = 2  # 2: every line carries the job fingerprint; outputs are objects
#: Fields that do not change any result: left out of the manifest, so they may differ on resume.
RUNTIME_FIELDS = ("out", "device", "progress", "shard")


@dataclass
class JobSpec:
    """A sampling job (the arguments of ``itemp sample``).

    model: a shipped demo name (``calm``, ``ddpm``, ``flow``, ``digits``; see
        :data:`implicit_temperature.jobs.models.DEMO_MODELS`), a diffusers pipeline folder, or
        ``package.module:factory`` (a function returning a model, or ``(model, tokenizer)``).
    problems: a JSONL or text file of prompts/contexts, or a count (unconditional models); see
        :mod:`implicit_temperature.jobs.problems`.
    out: the output folder (the job's checkpoint: ``results.jsonl``, ``manifest.json``,
        ``parts/``, ``images/``).
    temperatures: one or several T > 0; one result line per (problem, temperature).
    method: ``"auto"`` | ``"exact"`` (T <= 1) | ``"batch"``.
    plan: exact method's plan (e.g. ``"auto"``, ``"flat"`` or an explicit tree); None leaves the
        core's default. Forwarded as ``plan=`` only; a core without plans refuses it clearly.
    num_outputs: outputs per problem and temperature.
    num_samples: N of the batch method (and of auto's pilot), or "auto" (chosen from a pilot to
        meet the tolerance).
    max_new_tokens: CALM models: tokens to generate per output.
    max_draws: exact/auto budget of base draws (per call; per decoding step for CALM).
    tolerance: the TV to P^(1/T) auto must reach (an AccuracyWarning when it is missed).
    seed: the job seed; each (problem, temperature) gets its own generator from (seed, id, T).
    adapter: an adapter name (None: the one whose ``handles(model)`` is True).
    adapter_options: keyword options of the adapter (``quantizer``, ``num_inference_steps``, ...).
    device: ``"auto"`` (each rank's own GPU when CUDA is available, else CPU), ``"cpu"``,
        ``"cuda"``.
    progress: show a tqdm bar on rank 0.
    shard: ``(index, count)`` for launchers without torch.distributed (Slurm arrays, Ray tasks):
        run only the units at positions ``index, index + count, ...`` of the job (0-based), write
        them to ``parts/shard-INDEX-of-COUNT.jsonl`` and do not merge; afterwards one run without
        ``shard`` finds every unit done and writes ``results.jsonl``. None: the whole job (split
        over the torchrun ranks, if any).
    """

    model: str
    problems: str | int
    out: str
    temperatures: tuple[float, ...] = (0.5,)
    method: str = "auto"
    plan: Any = None
    num_outputs: int = 1
    num_samples: int | str = 200
    max_new_tokens: int = 32
    max_draws: int | None = None
    tolerance: float = DEFAULT_TOLERANCE
    seed: int = 0
    adapter: str | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    progress: bool = True
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.temperatures, numbers.Real):
            self.temperatures = (self.temperatures,)
        self.temperatures = tuple(self.temperatures)
        self.adapter_options = dict(self.adapter_options or {})
        if isinstance(self.problems, Path):
            self.problems = str(self.problems)
        self.out = str(self.out)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`JobError` naming the argument when a value cannot work (the checks run
        in this order, so the first bad argument is the one named); temperatures become floats
        and shard a pair of ints."""
        self._check_names()
        self._check_temperatures()
        self._check_method()
        self._check_counts()
        self._check_runtime()
        self._check_problems()

    def _check_names(self) -> None:
        """model a non-empty string, out not blank, plan None or text."""
        if not isinstance(self.model, str) or not self.model:
            raise JobError(f"model must be a non-empty string, got {self.model!r}")
        if not self.out.strip():
            raise JobError(
                "out must name an output folder, got an empty string (an empty --out would "
                "write into the current folder); give e.g. --out runs/job1"
            )
        if self.plan is not None and not isinstance(self.plan, str):
            raise JobError(
                f"plan must be text ('auto', 'flat' or a tree such as '(2+2)+(3+3)'), got "
                f"{type(self.plan).__name__} {self.plan!r}"
            )

    def _check_temperatures(self) -> None:
        """At least one temperature, each a finite real > 0, none repeated (stored as floats)."""
        if not self.temperatures:
            raise JobError("give at least one temperature")
        for t in self.temperatures:
            if (
                isinstance(t, bool)
                or not isinstance(t, numbers.Real)
                or not math.isfinite(t)
                or t <= 0
            ):
                raise JobError(f"temperatures must be finite numbers > 0, got {t!r}")
        self.temperatures = tuple(float(t) for t in self.temperatures)
        if len(set(self.temperatures)) != len(self.temperatures):
            raise JobError(f"temperatures repeat: {list(self.temperatures)}")

    def _check_method(self) -> None:
        """method one of :data:`METHODS`; ``exact`` only with every T <= 1."""
        if self.method not in METHODS:
            raise JobError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        hot = [t for t in self.temperatures if t > 1]
        if self.method == "exact" and hot:
            raise JobError(
                f"method 'exact' needs T <= 1, got {hot}: no algorithm using only samples "
                "flattens a law exactly; use method 'batch' (or 'auto') for T > 1"
            )

    def _check_counts(self) -> None:
        """num_outputs, num_samples ("auto" allowed) and max_new_tokens positive ints within
        their limits; max_draws None or a positive int; tolerance in (0, 1]; seed an integer."""
        for name in ("num_outputs", "num_samples", "max_new_tokens"):
            if name == "num_samples" and self.num_samples == "auto":
                continue  # N chosen from a pilot to meet the tolerance
            _positive_int(name, getattr(self, name))
            check_limit(name, getattr(self, name))
        if self.max_draws is not None:
            _positive_int("max_draws", self.max_draws)
        if (
            isinstance(self.tolerance, bool)
            or not isinstance(self.tolerance, numbers.Real)
            or not 0.0 < self.tolerance <= 1.0
        ):
            raise JobError(f"tolerance must be a number in (0, 1], got {self.tolerance!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise JobError(f"seed must be an integer, got {self.seed!r}")

    def _check_runtime(self) -> None:
        """adapter None or a non-empty name; device auto/cpu/cuda; shard None or (index, count)
        with 0 <= index < count (stored as a pair of ints)."""
        if self.adapter is not None and (not isinstance(self.adapter, str) or not self.adapter):
            raise JobError(
                f"adapter must be a registered adapter name or None, got {self.adapter!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise JobError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.shard is not None:
            try:
                index, count = (int(v) for v in self.shard)
            except (TypeError, ValueError):
                raise JobError(f"shard must be (index, count), got {self.shard!r}") from None
            if not 0 <= index < count:
                raise JobError(f"shard index must be in 0 .. count - 1, got {index} of {count}")
            self.shard = (index, count)

    def _check_problems(self) -> None:
        """problems a path or a count within the limit; adapter options and plan JSON values
        (the manifest records them)."""
        if isinstance(self.problems, bool) or not isinstance(self.problems, (str, int)):
            raise JobError(
                "problems must be a file path or a count of unconditional problems, "
                f"got {self.problems!r}"
            )
        if isinstance(self.problems, int):
            check_limit("num_problems", self.problems)
        try:
            json.dumps(self.adapter_options)
            json.dumps(self.plan)
        except (TypeError, ValueError) as exc:
            raise JobError(
                f"adapter options and plan must be JSON values (they are recorded in the job's "
                f"manifest): {exc}"
            ) from None

    def manifest(
        self, problems_digest: str | None, num_problems: int, device_type: str
    ) -> dict[str, Any]:
        """What ``DIR/manifest.json`` records: every argument that changes a result."""
        job = {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}
        job["temperatures"] = list(self.temperatures)
        if isinstance(self.problems, str):
            job["problems"] = str(Path(self.problems).resolve())
        return {
            "format": FORMAT_VERSION,
            "job": job,
            "problems_sha256": problems_digest,
            "num_problems": num_problems,
            "device_type": device_type,
        }


def _positive_int(name: str, value: Any) -> int:
    """The core's check (:func:`~implicit_temperature.core.options.is_positive_int`), raised as
    the job's own error."""
    if not is_positive_int(value):
        raise JobError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
