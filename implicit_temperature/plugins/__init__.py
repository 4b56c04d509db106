"""Plugin layer: hookspecs, the plugin manager, the adapter base and TemperatureSampler.

Dependencies point one way: adapters -> plugins -> core.
"""

from .adapter import Adapter
from .hookspecs import hookimpl, hookspec
from .manager import (
    PluginError,
    get_adapter,
    get_adapters,
    get_plugin_manager,
    get_quantizer,
    get_quantizers,
    list_plugins,
    plugin_errors,
    reload_plugins,
)
from .sampler import AdapterSelectionError, TemperatureSampler

__all__ = [
    "Adapter",
    "AdapterSelectionError",
    "PluginError",
    "TemperatureSampler",
    "get_adapter",
    "get_adapters",
    "get_plugin_manager",
    "get_quantizer",
    "get_quantizers",
    "hookimpl",
    "hookspec",
    "list_plugins",
    "plugin_errors",
    "reload_plugins",
]
