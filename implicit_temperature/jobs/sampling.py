"""Running one unit of a job, (problem, temperature) -> one result record.

Two runners:

* :class:`CALMRunner` (a CALM model with its tokenizer): ``num_outputs`` continuations of the
  prompt decoded chunk by chunk with :func:`implicit_temperature.adapters.calm.generate`;
  outputs are the decoded new text.
* :class:`AdapterRunner` (anything an adapter handles): ``TemperatureSampler(...).sample``;
  outputs are PNG paths for images ``(C, H, W)``, else the keys (and the samples themselves when
  they are small numeric vectors, e.g. the 2-D mixture demos).

Each unit gets a fresh generator seeded with ``problem_seed(seed, id, T)``, so a record depends on
nothing but the job's arguments and the problem.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import re
from pathlib import Path
from typing import Any

import torch

from .errors import JobError
from .problems import Problem
from .spec import JobSpec

#: Samples with at most this many numbers each are written out in full next to their keys.
MAX_INLINE_SAMPLE_SIZE = 16


def jsonable(value: Any) -> Any:
    """Tensors, numpy values, dataclasses, tuples, dicts -> plain JSON values (non-finite floats
    become strings, so every line stays strict JSON)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    return repr(value)


def _step_diagnostics(per_step: list[Any]) -> dict[str, Any] | None:
    """Decoding steps' diagnostics summed up: the steps, and the smallest and mean share of
    distinct keys and of singletons among the draws each step looked at (None at T = 1)."""
    if not per_step:
        return None
    distinct = [d.distinct_share for d in per_step]
    singles = [float(d.singleton_share.double().mean()) for d in per_step]
    return {
        "steps": len(per_step),
        "distinct_share_mean": jsonable(sum(distinct) / len(distinct)),
        "distinct_share_max": jsonable(max(distinct)),
        "singleton_share_mean": jsonable(sum(singles) / len(singles)),
    }


def safe_name(problem_id: str) -> str:
    """A folder name for a problem id: the id itself when it is made of ``[A-Za-z0-9._-]`` (at
    most 80 characters), else a cleaned prefix plus 8 hex digits of its sha256, so two ids never
    share a folder."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", problem_id)[:80]
    if clean == problem_id and clean not in (".", ".."):
        return clean
    return f"{clean}-{hashlib.sha256(problem_id.encode('utf-8')).hexdigest()[:8]}"


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a ``(C, H, W)`` image (C = 1, 3 or 4; floats in [0, 1] or uint8) as a PNG."""
    from PIL import Image

    x = image.detach().cpu()
    if x.dtype.is_floating_point:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    x = x.to(torch.uint8).permute(1, 2, 0).numpy()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[2]]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(x[:, :, 0] if mode == "L" else x, mode=mode).save(path, format="PNG")


def _takes_option(cls: Any, name: str) -> bool:
    try:
        return name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _is_image_batch(samples: Any) -> bool:
    return (
        isinstance(samples, torch.Tensor)
        and samples.dim() == 4
        and samples.shape[1] in (1, 3, 4)
        and samples.shape[2] > 1
        and samples.shape[3] > 1
    )


class CALMRunner:
    """Units on a CALM model with a tokenizer (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, spec: JobSpec) -> None:
        from ..adapters.calm import generate
        from ..adapters.calm.adapter import check_input_ids

        if spec.adapter not in (None, "calm"):
            raise JobError(
                f"model {spec.model!r} is a CALM model with a tokenizer; it runs with "
                f"the calm adapter, not {spec.adapter!r} (drop --adapter)"
            )
        if spec.adapter_options:
            raise JobError(
                "the CALM job takes no adapter options (prompts come from the "
                f"problems file), got {sorted(spec.adapter_options)}"
            )
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        self._generate, self._check = generate, check_input_ids
        self._plan = {} if spec.plan is None else {"plan": spec.plan}

    def check(self, problem: Problem) -> None:
        """Raise :class:`JobError` (with the problem's line) for a prompt the model can't take."""
        where = f"problem {problem.id!r}" + (f" (line {problem.line})" if problem.line else "")
        if problem.prompt is None:
            raise JobError(
                f"{where}: a CALM model needs a prompt; give a problems file, not a count"
            )
        try:
            self._check(self.model, self.tokenizer.encode(problem.prompt), "prompt")
        except (ValueError, TypeError) as exc:
            raise JobError(f"{where}: {exc}") from None

    def __call__(self, problem: Problem, temperature: float, seed: int) -> dict[str, Any]:
        spec = self.spec
        ids = self.tokenizer.encode(problem.prompt)
        out = self._generate(
            self.model,
            ids.expand(spec.num_outputs, -1),
            temperature=temperature,
            method=spec.method,
            num_samples=spec.num_samples,
            max_new_tokens=spec.max_new_tokens,
            eos_token_id=getattr(self.tokenizer, "eos_token_id", None),
            generator=seed,
            max_draws=spec.max_draws,
            tolerance=spec.tolerance,
            return_dict_in_generate=True,
            **self._plan,
        )
        new = out.sequences[:, ids.shape[1] :]
        stats: dict[str, Any] = {"steps": out.steps}
        if out.cascade_levels:
            stats["cascade_level_min"] = float(torch.cat(out.cascade_levels).min())
        methods = getattr(out, "methods", [])
        plans = [p for p in getattr(out, "plans", []) if p is not None]
        return {
            "outputs": self.tokenizer.batch_decode(new),
            "draws": int(out.draws),
            "method_used": "+".join(sorted(set(methods))) or None,
            "plan": sorted(set(plans)) if plans else jsonable(spec.plan),
            "diagnostics": _step_diagnostics(getattr(out, "diagnostics", [])),
            "stats": stats,
        }


class AdapterRunner:
    """Units on any model an adapter handles (see the module docstring)."""

    def __init__(
        self, model: Any, spec: JobSpec, out: Path, default_options: dict[str, Any] | None = None
    ) -> None:
        from ..plugins import TemperatureSampler, get_adapter

        if spec.adapter is not None:
            get_adapter(spec.adapter)  # unknown name: PluginError listing the registered ones
        self.model, self.spec, self.out = model, spec, out
        self.options = {**(default_options or {}), **spec.adapter_options}
        if "progress" not in self.options and _takes_option(
            self._adapter_class(model, spec), "progress"
        ):
            self.options["progress"] = False  # one job bar, not one adapter bar per problem
        self._sampler_cls = TemperatureSampler
        self._plan = {} if spec.plan is None else {"plan": spec.plan}
        self._shared = None

    @staticmethod
    def _adapter_class(model: Any, spec: JobSpec) -> Any:
        from ..plugins import get_adapter
        from ..plugins.sampler import find_adapter_class

        try:
            return get_adapter(spec.adapter) if spec.adapter else find_adapter_class(model)
        except Exception:  # noqa: BLE001 - building the sampler reports it clearly
            return None

    def _sampler(self, problem: Problem) -> Any:
        opts = dict(self.options)
        if problem.prompt is None:
            if self._shared is None:
                self._shared = self._sampler_cls(self.model, self.spec.adapter, **opts)
            return self._shared
        if "prompt" in opts:
            raise JobError(
                "give prompts in the problems file or as adapter option 'prompt', not both"
            )
        return self._sampler_cls(self.model, self.spec.adapter, prompt=problem.prompt, **opts)

    def check(self, problem: Problem) -> None:
        """Build the sampler once (unknown adapter, quantizer or option -> a clear error now)."""
        if problem.prompt is None and self._shared is not None:
            return
        try:
            self._sampler(problem)
        except TypeError as exc:
            raise JobError(
                f"adapter options {sorted(self.options)} (and prompt) were refused: {exc}"
            ) from None

    def __call__(self, problem: Problem, temperature: float, seed: int) -> dict[str, Any]:
        spec = self.spec
        res = self._sampler(problem).sample(
            temperature,
            method=spec.method,
            num_samples=spec.num_samples,
            num_outputs=spec.num_outputs,
            max_draws=spec.max_draws,
            tolerance=spec.tolerance,
            generator=seed,
            **self._plan,
        )
        samples, keys = res.samples, res.keys
        if res.batched:  # one prompt -> B = 1
            samples, keys = samples[0], keys[0]
        if _is_image_batch(samples):
            folder = Path("images") / safe_name(problem.id)
            outputs = []
            for k in range(samples.shape[0]):
                rel = folder / f"T{temperature:g}-{k}.png"
                save_png(samples[k], self.out / rel)
                outputs.append(str(rel))
        else:
            outputs = [{"key": jsonable(keys[k])} for k in range(keys.shape[0])]
            if isinstance(samples, torch.Tensor) and samples[0].numel() <= MAX_INLINE_SAMPLE_SIZE:
                for k, o in enumerate(outputs):
                    o["sample"] = jsonable(samples[k].double())
        stats: dict[str, Any] = {"model_calls": res.model_calls}
        if res.cascade_level is not None:
            stats["cascade_level_min"] = float(res.cascade_level.min())
        if res.rounds is not None:
            stats["rounds"] = res.rounds
        return {
            "outputs": outputs,
            # images: the key of each (what "the same outcome" meant, e.g. the digit shown)
            "keys": jsonable(keys) if outputs and isinstance(outputs[0], str) else None,
            "draws": int(res.draws),
            "method_used": res.method,
            "plan": jsonable(getattr(res, "plan", spec.plan)),
            "diagnostics": jsonable(getattr(res, "diagnostics", None)),
            "stats": stats,
        }


def make_runner(loaded: Any, spec: JobSpec, out: Path) -> CALMRunner | AdapterRunner:
    """The runner for a loaded model: CALM (with a tokenizer) or a generic adapter."""
    from ..adapters.calm.adapter import missing_calm_attributes

    if loaded.tokenizer is not None and not missing_calm_attributes(loaded.model):
        return CALMRunner(loaded.model, loaded.tokenizer, spec)
    return AdapterRunner(loaded.model, spec, out, loaded.adapter_options)
