"""Running one unit of a job, (problem, temperature) -> one result record.

Two runners:

* :class:`CALMRunner` (a CALM model with its tokenizer): ``num_outputs`` continuations of the
  prompt decoded chunk by chunk with :func:`implicit_temperature.adapters.calm.generate`;
  outputs are the decoded new text.
* :class:`AdapterRunner` (anything an adapter handles): ``TemperatureSampler(...).sample``;
  each output is ``{"key": ...}`` plus ``"image"`` (a PNG path) for images ``(C, H, W)``,
  ``"text"`` and ``"answer"`` for the completions of an endpoint, or ``"sample"`` from the
  adapter's :meth:`~implicit_temperature.plugins.Adapter.sample_to_json` (small numeric vectors,
  strings, ...). Adapters with a draw store (``store`` option) keep it in ``OUT/draws`` unless
  told otherwise, so a rerun of the job replays every paid completion.

Every record follows the schema shipped as ``implicit_temperature/jobs/results.schema.json``
(see docs/scaling.md): the same fields for every model.

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


def summarise_diagnostics(calls: list[Any]) -> dict[str, Any] | None:
    """The core's :class:`~implicit_temperature.core.Diagnostics` of one or several calls (CALM:
    one per decoding step) summed up in one shape for every model: the number of calls, what was
    looked at, and the mean and largest share of distinct keys and the mean share of singletons
    among the samples each call looked at. None when no call had any (e.g. T = 1)."""
    calls = [d for d in calls if d is not None]
    if not calls:
        return None
    distinct = [d.distinct_share for d in calls]
    singles = [float(d.singleton_share.double().mean()) for d in calls]
    seen = sorted({d.seen for d in calls})

    def share(x: float) -> float | None:  # NaN (no sample looked at) -> null
        return x if math.isfinite(x) else None

    return {
        "calls": len(calls),
        "seen": seen[0] if len(seen) == 1 else "+".join(seen),
        "distinct_share_mean": share(sum(distinct) / len(distinct)),
        "distinct_share_max": share(max(distinct)),
        "singleton_share_mean": share(sum(singles) / len(singles)),
    }


def safe_name(problem_id: str) -> str:
    """A folder name for a problem id: the id itself when it is made of ``[A-Za-z0-9._-]`` (at
    most 80 characters), else a cleaned prefix plus 8 hex digits of its sha256, so two ids never
    share a folder."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", problem_id)[:80]
    if clean == problem_id and clean not in (".", ".."):
        return clean
    return f"{clean}-{hashlib.sha256(problem_id.encode('utf-8')).hexdigest()[:8]}"


def png_name(problem_id: str, temperature: float, index: int) -> Path:
    """``images/<problem>/T<exact T>-<index>.png``: the temperature is written with ``repr``
    (the shortest text that reads back as the same float), so two temperatures never share a
    file however close they are (0.5 and 0.5000001 print alike with ``:g``)."""
    return Path("images") / safe_name(problem_id) / f"T{float(temperature)!r}-{index}.png"


def save_png(image: torch.Tensor, out: Path, rel: Path | str | None = None) -> None:
    """Write a ``(C, H, W)`` image (C = 1, 3 or 4; floats in [0, 1] or uint8) as a PNG at
    ``out / rel`` (``rel`` None: ``out`` is the file's path). The file is written to a fresh
    temporary file and renamed into place, and no folder below ``out`` may be a link, so a link
    planted at the name is replaced, never written through."""
    from PIL import Image

    from . import safefs

    if rel is None:
        out, rel = out.parent, Path(out.name)
    rel = Path(rel)
    x = image.detach().cpu()
    if x.dtype.is_floating_point:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    x = x.to(torch.uint8).permute(1, 2, 0).numpy()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[2]]
    safefs.make_dirs(out, rel.parent)
    img = Image.fromarray(x[:, :, 0] if mode == "L" else x, mode=mode)
    safefs.write_replace(out, rel, lambda f: img.save(f, format="PNG"), sync=False)


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
        eos = getattr(self.tokenizer, "eos_token_id", None)
        ended = torch.zeros(new.shape[0], dtype=torch.bool)
        if eos is not None:
            ended = torch.isin(new, torch.as_tensor(eos).reshape(-1).to(new.device)).any(dim=1)
        reasons = ["eos" if e else "length" for e in ended.cpu().tolist()]
        texts = self.tokenizer.batch_decode(new)
        methods = list(getattr(out, "methods", []))
        plans = list(getattr(out, "plans", []))
        if not methods:  # T = 1: each step is one plain draw, which is exact
            methods, plans = ["exact"] * out.steps, [None] * out.steps
        return {
            "outputs": [
                {"text": t, "finish_reason": r} for t, r in zip(texts, reasons, strict=True)
            ],
            "draws": int(out.draws),
            "method_used": "+".join(sorted(set(methods))),
            "plan": [jsonable(p) for p in plans],
            "diagnostics": summarise_diagnostics(list(getattr(out, "diagnostics", []))),
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
        cls = self._adapter_class(model, spec)
        if "progress" not in self.options and _takes_option(cls, "progress"):
            self.options["progress"] = False  # one job bar, not one adapter bar per problem
        if "store" not in self.options and _takes_option(cls, "store"):
            self.options["store"] = str(out / "draws")  # endpoint draws: kept with the job
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
        from ..core.errors import ImplicitTemperatureError

        try:
            self._sampler(problem)
        except (ImplicitTemperatureError, TypeError, ValueError) as exc:
            given = sorted(self.spec.adapter_options)  # what the user passed (not our defaults)
            what = f"adapter options {given}" if given else "the adapter's defaults"
            where = f"problem {problem.id!r}: " if problem.prompt is not None else ""
            raise JobError(f"{where}{what} were refused: {exc}") from None

    def __call__(self, problem: Problem, temperature: float, seed: int) -> dict[str, Any]:
        sampler = self._sampler(problem)
        try:
            return self._unit(sampler, problem, temperature, seed)
        finally:
            close = getattr(getattr(sampler, "adapter", None), "close", None)
            if problem.prompt is not None and callable(close):
                close()  # one adapter per prompt: free its connections

    def _unit(self, sampler: Any, problem: Problem, temperature: float, seed: int) -> dict:
        spec = self.spec
        res = sampler.sample(
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
        outputs: list[dict[str, Any]] = [{"key": jsonable(keys[k])} for k in range(keys.shape[0])]
        if _is_image_batch(samples):
            for k, o in enumerate(outputs):
                rel = png_name(problem.id, temperature, k)
                save_png(samples[k], self.out, rel)
                o["image"] = rel.as_posix()
        else:
            adapter = getattr(sampler, "adapter", None)
            answer_of = getattr(adapter, "answer_of", None)
            to_json = getattr(adapter, "sample_to_json", None) or default_sample_to_json
            for k, o in enumerate(outputs):
                if callable(answer_of) and isinstance(samples[k], str):
                    o["text"] = samples[k]  # a completion: its text and the answer it gives
                    o["answer"] = answer_of(samples[k])
                    continue
                value = to_json(samples[k])
                if value is not None:
                    o["sample"] = jsonable(value)
        stats: dict[str, Any] = {"model_calls": res.model_calls}
        if res.cascade_level is not None:
            stats["cascade_level_min"] = float(res.cascade_level.min())
        if res.rounds is not None:
            stats["rounds"] = res.rounds
        if res.extra.get("adapter") is not None:  # e.g. an endpoint's requests and completions
            stats["adapter"] = jsonable(res.extra["adapter"])
        tv = float(res.estimated_tv)
        stats["estimated_tv"] = tv if math.isfinite(tv) else None  # None: could not be estimated
        return {
            "outputs": outputs,
            "draws": int(res.draws),
            "method_used": res.method,
            "plan": [jsonable(_plan_used(res))],
            "diagnostics": summarise_diagnostics([getattr(res, "diagnostics", None)]),
            "stats": stats,
        }


def _plan_used(res: Any) -> str | None:
    """The collision tree the exact method ran (None for the batch method)."""
    if res.method != "exact" or res.plan is None:
        return None
    return str(res.plan)


def default_sample_to_json(sample: Any) -> Any:
    """What a job writes for one sample when the adapter defines no ``sample_to_json``: small
    numeric tensors/arrays (at most :data:`MAX_INLINE_SAMPLE_SIZE` numbers) as (nested) lists of
    float64, strings and JSON scalars as they are; anything else None (only its key is kept)."""
    if isinstance(sample, torch.Tensor):
        return sample.double() if sample.numel() <= MAX_INLINE_SAMPLE_SIZE else None
    if isinstance(sample, (str, bool, int, float)):
        return sample
    if hasattr(sample, "tolist") and getattr(sample, "size", MAX_INLINE_SAMPLE_SIZE + 1) <= (
        MAX_INLINE_SAMPLE_SIZE
    ):
        return sample.tolist()
    return None


def make_runner(loaded: Any, spec: JobSpec, out: Path) -> CALMRunner | AdapterRunner:
    """The runner for a loaded model: CALM (with a tokenizer) or a generic adapter."""
    from ..adapters.calm.adapter import missing_calm_attributes

    if loaded.tokenizer is not None and not missing_calm_attributes(loaded.model):
        return CALMRunner(loaded.model, loaded.tokenizer, spec)
    return AdapterRunner(loaded.model, spec, out, loaded.adapter_options)
