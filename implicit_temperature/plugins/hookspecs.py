"""Hook specifications: the contract between implicit-temperature and its plugins.

A plugin is a module (or object) with functions marked ``@implicit_temperature.hookimpl`` whose
names match the hooks below. Built-in adapters and quantizers are plugins too: they go through the
same hooks as third-party packages (which are found through the entry-point group
``implicit_temperature``).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT_NAME = "implicit_temperature"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_adapters(register: Callable[[type], None]) -> None:
    """Register adapter classes by calling ``register(AdapterClass)`` once per class.

    An adapter class has a class attribute ``name`` (str, unique across all plugins), a
    classmethod ``handles(model) -> bool`` that says whether it can drive ``model``, a constructor
    ``AdapterClass(model, **options)`` and instances with ``draw(n, generator=None)`` and
    ``quantize(samples) -> LongTensor``. See :class:`implicit_temperature.plugins.Adapter`.
    Registering two classes under one ``name`` is an error that names both plugins.
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
