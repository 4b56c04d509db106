"""Which model a job runs: shipped demo names, diffusers pipeline folders, ``module:factory``,
``endpoint:URL`` (an OpenAI-compatible endpoint, driven by the ``endpoint`` adapter).

:data:`DEMO_MODELS` maps each shipped demo name to a ``"module:function"`` loader string; the
module is imported only when that model is used, so adding a demo is one line here, and a demo
whose module is absent from this installation is reported as such (not as an unknown name).
A loader returns the model, ``(model, tokenizer)`` (CALM models: the job decodes text), or a dict
with ``model`` and optionally ``tokenizer`` and ``adapter_options`` (defaults for the adapter, e.g.
a quantizer object; the job's own adapter options take precedence). When it takes a ``device``
argument it is called with the rank's device; otherwise the model is moved with ``.to(device)``
when it has one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import JobError

#: Shipped demo name -> "module:function" returning the model or (model, tokenizer).
DEMO_MODELS: dict[str, str] = {
    "calm": "implicit_temperature.demos.calm:load_demo_model",
    "ddpm": "implicit_temperature.demos.mixture:load_ddpm_pipeline",
    "flow": "implicit_temperature.demos.mixture:load_flow_pipeline",
    "digits": "implicit_temperature.jobs.models:load_digits_demo",
    "answers": "implicit_temperature.demos.answers:load_answers_model",
}
#: ``endpoint:URL`` names an OpenAI-compatible endpoint (the ``endpoint`` adapter's model).
ENDPOINT_PREFIX = "endpoint:"
#: Demo name -> the module it needs, where the loader lives elsewhere (checked before loading).
DEMO_REQUIRES: dict[str, str] = {"digits": "implicit_temperature.demos.digits"}


@dataclass
class LoadedModel:
    """A loaded model, its tokenizer (None unless the loader returned one) and where it came
    from (for messages)."""

    model: Any
    tokenizer: Any
    source: str
    adapter_options: dict[str, Any] = field(default_factory=dict)


def _module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def demo_availability() -> dict[str, str]:
    """Shipped demo name -> "available" or why not (cheap: modules are found, not imported)."""
    out = {}
    for name, target in DEMO_MODELS.items():
        module = DEMO_REQUIRES.get(name, target.split(":")[0])
        out[name] = (
            "available"
            if _module_available(module)
            else f"not in this installation (module {module} not found)"
        )
    return out


def _known_models_text() -> str:
    rows = [
        f"{name} ({state})" if state != "available" else name
        for name, state in demo_availability().items()
    ]
    return (
        "shipped demo models: " + ", ".join(rows) + "; or a diffusers pipeline folder "
        "(with model_index.json); or package.module:factory; or endpoint:URL (an "
        "OpenAI-compatible endpoint)"
    )


def resolve_target(model: str) -> tuple[str, str]:
    """``model`` -> ``(kind, target)`` with kind "demo", "folder", "factory" or "endpoint"
    (``endpoint:URL``; target the URL), checked without
    importing the model's module. Raises :class:`JobError` listing what is available."""
    if model.startswith(ENDPOINT_PREFIX):
        url = model[len(ENDPOINT_PREFIX) :]
        if not url.startswith(("http://", "https://")):
            raise JobError(
                f"model {model!r}: write an endpoint as endpoint:URL with an http(s) URL, e.g. "
                "endpoint:http://127.0.0.1:8000/v1"
            )
        return "endpoint", url
    if model in DEMO_MODELS:
        target = DEMO_MODELS[model]
        module = DEMO_REQUIRES.get(model, target.split(":")[0])
        if not _module_available(module):
            raise JobError(
                f"model {model!r} is a registered demo, but its module {module} is not part of "
                f"this installation (update implicit-temperature); {_known_models_text()}"
            )
        return "demo", target
    path = Path(model)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise JobError(
                f"{path} is a folder without model_index.json, so not a diffusers "
                f"pipeline folder; {_known_models_text()}"
            )
        return "folder", str(path)
    if ":" in model:
        module, _, func = model.partition(":")
        if module and not func:
            raise JobError(
                f"model {model!r} names module {module!r} but no factory after the ':'; "
                f"write {module}:FUNCTION (a function returning the model)"
            )
        if not module or not _module_available(module):
            raise JobError(
                f"cannot find module {module!r} of model {model!r} (is its package "
                f"installed?); {_known_models_text()}"
            )
        return "factory", model
    raise JobError(f"unknown model {model!r}; {_known_models_text()}")


def _call_loader(fn: Any, device: Any) -> Any:
    try:
        takes_device = "device" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_device = False
    return fn(device=device) if takes_device else fn()


def _import_factory(model: str, target: str) -> Any:
    from ..plugins.options import did_you_mean

    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module: report it in one line
        raise JobError(
            f"importing module {module_name} of model {model!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    fn: Any = module
    for part in func_name.split("."):
        parent, fn = fn, getattr(fn, part, None)
        if fn is None:
            names = [n for n in dir(parent) if not n.startswith("_")]
            raise JobError(
                f"module {module_name} has no {func_name!r} (model {model!r})"
                f"{did_you_mean(part, names)}"
            )
    if not callable(fn):
        raise JobError(f"{target} is not callable (model {model!r})")
    return fn


def _call_factory(model: str, target: str, device: Any) -> Any:
    """Import and call ``module:factory``; whatever it raises (or a ``sys.exit``) becomes a
    :class:`JobError` naming the factory, and it must return a model."""
    fn = _import_factory(model, target)
    try:
        required = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != "device"
        ]
    except (TypeError, ValueError):
        required = []
    if required:
        raise JobError(
            f"factory {target} needs the argument(s) {required}; a job calls it with no "
            "arguments (or only device=): give them defaults, or wrap it in a function that "
            "takes none"
        )
    try:
        obj = _call_loader(fn, device)
    except SystemExit as exc:
        raise JobError(
            f"factory {target} called sys.exit({exc.code!r}) instead of returning a model"
        ) from None
    except JobError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code: report it in one line
        raise JobError(f"factory {target} raised {type(exc).__name__}: {exc}") from exc
    if obj is None:
        raise JobError(
            f"factory {target} returned None; it must return the model, (model, tokenizer) or "
            "a dict with 'model' (did it forget a return statement?)"
        )
    return obj


def load_model(model: str, device: Any) -> LoadedModel:
    """Load ``model`` (see :func:`resolve_target`) onto ``device``."""
    kind, target = resolve_target(model)
    if kind == "endpoint":
        from ..adapters.endpoint import Endpoint

        return LoadedModel(Endpoint(target), None, model)
    if kind == "folder":
        try:
            from diffusers import DiffusionPipeline
        except ImportError:
            raise JobError(
                "a pipeline folder needs diffusers: pip install 'implicit-temperature[diffusion]'"
            ) from None
        try:
            obj = DiffusionPipeline.from_pretrained(target, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - report with the folder named
            if "trust_remote_code" in str(exc):
                raise JobError(
                    f"the pipeline in {target} ships its own Python code, which itemp sample "
                    "never runs on its own. If you trust it, load it in a factory of yours "
                    "(DiffusionPipeline.from_pretrained(..., trust_remote_code=True)) and run "
                    "itemp sample package.module:factory"
                ) from exc
            raise JobError(
                f"diffusers could not load the pipeline in {target}: {type(exc).__name__}: {exc}"
            ) from exc
        if hasattr(obj, "set_progress_bar_config"):
            obj.set_progress_bar_config(disable=True)
    else:
        obj = _call_factory(model, target, device)
    tokenizer = None
    defaults: dict[str, Any] = {}
    if isinstance(obj, dict):
        unknown = set(obj) - {"model", "tokenizer", "adapter_options"}
        if "model" not in obj or unknown:
            raise JobError(
                f"the loader of {model!r} returned a dict with keys {sorted(obj)}; "
                "expected model and optionally tokenizer, adapter_options"
            )
        obj, tokenizer, defaults = (
            obj["model"],
            obj.get("tokenizer"),
            dict(obj.get("adapter_options") or {}),
        )
    elif isinstance(obj, tuple):
        if len(obj) != 2:
            raise JobError(
                f"the loader of {model!r} returned a tuple of {len(obj)}; return the "
                "model or (model, tokenizer)"
            )
        obj, tokenizer = obj
    if callable(getattr(obj, "to", None)):
        moved = obj.to(device)
        obj = moved if moved is not None else obj
    return LoadedModel(obj, tokenizer, model, defaults)


def load_digits_demo(device: Any = None) -> dict[str, Any]:
    """The digits demo for jobs: its DDPM pipeline, with the shipped digit classifier as the
    quantizer (two images are the same outcome when they show the same digit)."""
    from ..demos.digits import load_classifier, load_digits_pipeline
    from ..quantizers import ClassifierQuantizer

    return {
        "model": load_digits_pipeline(device),
        "adapter_options": {
            "quantizer": ClassifierQuantizer(load_classifier(device)),
            "batch_size": 256,
        },
    }


def check_plugins(adapter: str | None, adapter_options: dict[str, Any]) -> None:
    """Before anything is loaded: an unknown adapter name or quantizer name is an error that
    lists the registered ones (``itemp plugins`` shows where each comes from)."""
    from ..plugins import get_adapter, get_quantizers

    if adapter is not None:
        get_adapter(adapter)  # PluginError: "no adapter named ... (known: ...)"
    quantizer = adapter_options.get("quantizer")
    if isinstance(quantizer, str):
        known = get_quantizers()
        if quantizer not in known and quantizer.partition(":")[0] not in known:
            from ..plugins.options import did_you_mean_name

            raise JobError(
                f"unknown quantizer {quantizer!r}{did_you_mean_name(quantizer, known)}; "
                "registered quantizers: "
                f"{', '.join(sorted(known)) or 'none'} (see `itemp plugins`)"
            )
