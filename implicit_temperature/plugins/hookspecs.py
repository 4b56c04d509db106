"""Hook specifications: the contract between implicit-temperature and its plugins.

A plugin is a module (or object) with functions marked ``@implicit_temperature.hookimpl`` whose
names match the hooks below. Built-in adapters and quantizers are plugins too: they go through the
same hooks as third-party packages (which are found through the entry-point group
``implicit_temperature``).

The contracts are written here, once, in the hooks' docstrings (as pytest documents its hooks):
:class:`~implicit_temperature.plugins.Adapter`'s docstring and docs/plugins.md quote
:func:`adapter_contract`, and a test keeps them equal.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pluggy

PROJECT_NAME = "implicit_temperature"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_adapters(register: Callable[[type], None]) -> None:
    """Register adapter classes by calling ``register(AdapterClass)`` once per class.

    An adapter tells implicit-temperature how to draw samples from one model family and when two
    samples are the same outcome. The contract of an adapter class:

    * ``name`` (class attribute, non-empty str): unique across all plugins; users pass it as
      ``adapter=NAME`` and ``itemp plugins`` lists it. Two classes registered under one name are
      an error that names both plugins, and neither is used.
    * ``handles(model) -> bool`` (classmethod): True when this adapter can drive ``model``. Keep
      it specific (an ``isinstance`` check, a config field): ``TemperatureSampler(model)``
      refuses to guess when several adapters say yes.
    * ``__init__(model, **options)``: the adapter's options (quantizer, context, model call
      keywords, batch sizes). Quantizers come as ``quantizer=`` (a registered name, a quantizer
      object or a callable) with ``quantizer_options=`` (a dict of options for a registered
      name), passed through ``implicit_temperature.quantizers.resolve_quantizer``. Keep the
      keywords explicit and reject unknown ones: ``TemperatureSampler`` then reports an unknown
      keyword with the closest valid name.
    * ``draw(n, generator=None)``: ``n`` i.i.d. samples from the model with leading dimension
      ``n``, in as few model calls as memory allows. ``generator`` is a ``torch.Generator``: the
      same generator state gives the same samples. It may live on another device than the model
      (int seeds give a CPU generator): draw the noise on ``generator.device`` and move it, as
      diffusers' ``randn_tensor`` does.
    * ``quantize(samples) -> LongTensor``: the keys of ``samples``, shape ``(n,)`` or ``(n, d)``;
      equal keys mean the same outcome.
    * ``batched`` (optional, bool, default False): True when ``draw`` runs ``num_problems``
      independent problems at once (e.g. B prompts) and returns ``(B, n, ...)``; ``quantize``
      then returns ``(B, n)`` or ``(B, n, d)``.
    * ``draw(n, generator=None, active=None)`` (optional, batched adapters): declare ``active``
      and the exact sampler passes a bool tensor ``(B,)`` once some problems are done; return
      ``(B_active, n, ...)`` for those problems only, so finished problems cost no model time.
    * ``draw(n, generator=[g_1, ..., g_B])`` (optional, batched adapters): with
      ``temperature_sample(..., batched=True, generator=[...])`` (one generator or seed per
      problem, any method) ``draw`` receives the list of the drawn problems' generators and
      must draw row b from ``g_b`` alone; then a problem's result never depends on its
      batch-mates (auto and the exact method's pilot plan each problem from its own draws).
    * ``sample_to_json(sample) -> JSON value | None`` (optional): one sample (one row of what
      ``draw`` returned, after the leading ``n``) as it goes into a job's ``results.jsonl``
      (field ``outputs[k].sample``), e.g. a string for text samples; None writes only its key.
      The default (``implicit_temperature.jobs.sampling.default_sample_to_json``) writes numeric
      tensors of at most 16 numbers and strings; images ``(C, H, W)`` are always written as PNG
      files instead.

    ``register`` checks the non-empty ``name`` and that ``handles``, ``draw`` and ``quantize``
    are callable; a failed check is reported as the plugin's error.
    :class:`implicit_temperature.plugins.Adapter` is a base class that follows this contract.
    """


@hookspec
def register_quantizers(register: Callable[..., None]) -> None:
    """Register quantizers by calling ``register(name, factory)``.

    ``factory(**options)`` returns a quantizer: a callable ``quantizer(samples) -> LongTensor``
    mapping ``(n, ...)`` samples to integer keys ``(n,)`` or ``(n, d)`` (equal keys = same
    outcome). A quantizer may also have ``fit(samples)`` (called on a pilot batch before use,
    e.g. to learn a codebook). Adapters accept a registered quantizer's name in their
    ``quantizer=`` option.
    """


def adapter_contract() -> str:
    """The adapter contract: the bullet list of :func:`register_adapters`' docstring, dedented
    (empty when Python runs with docstrings stripped, ``-OO``)."""
    doc = inspect.cleandoc(register_adapters.__doc__ or "")
    start, end = doc.find("\n* "), doc.rfind("\n\n``register`` checks")
    return doc[start + 1 : end].strip() if start >= 0 and end > start else ""
