"""One pluggy PluginManager, entry-point loading and the adapter/quantizer registries.

Built-in plugins (``BUILTIN_PLUGINS``) are registered through exactly the same hooks as third-party
ones, which are found in the entry-point group ``implicit_temperature``. A plugin that fails to
import (any exception, ``SystemExit`` included; only ``KeyboardInterrupt`` goes through), raises
inside a hook, or defines a hook that matches no hookspec (a misspelling such as
``register_adaptors``) is recorded in :func:`plugin_errors`; the rest load.

Environment (read when the plugins are first loaded, and again after :func:`reload_plugins`):

* ``ITEMP_DISABLE_PLUGIN_AUTOLOAD=1``: do not load entry-point plugins (built-ins still load);
* ``ITEMP_LOAD_PLUGINS=a,b``: load only these entry-point plugins (by entry-point or distribution
  name; also when autoloading is disabled); ``ITEMP_LOAD_PLUGINS=`` (empty) loads none.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
from dataclasses import dataclass
from typing import Any, cast

import pluggy

from . import hookspecs
from .options import did_you_mean

ENTRY_POINT_GROUP = "implicit_temperature"
OWN_DISTRIBUTION = "implicit-temperature"
DISABLE_AUTOLOAD_ENV = "ITEMP_DISABLE_PLUGIN_AUTOLOAD"
LOAD_PLUGINS_ENV = "ITEMP_LOAD_PLUGINS"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "implicit_temperature.quantizers.plugin",
    "implicit_temperature.adapters.calm.plugin",
    "implicit_temperature.adapters.diffusion.plugin",
    "implicit_temperature.adapters.flow_matching.plugin",
)


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something inconsistent."""


@dataclass(frozen=True)
class PluginRecord:
    """One plugin: where it came from, and its error if it failed to load or register."""

    name: str
    distribution: str
    version: str
    error: str | None = None


@dataclass(frozen=True)
class Registration:
    """One registered adapter class or quantizer factory and the plugin that provided it."""

    name: str
    obj: Any
    plugin: str
    distribution: str


class _Registry:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.adapters: dict[str, Registration] = {}
        self.quantizers: dict[str, Registration] = {}
        self.conflicts: dict[tuple[str, str], list[Registration]] = {}
        self._origin: dict[str, tuple[str, str]] = {}  # pluggy name -> (distribution, version)
        self._load()

    # -- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        own_version = _version_of(OWN_DISTRIBUTION)
        for module_name in BUILTIN_PLUGINS:
            self._register_module(
                module_name,
                lambda m=module_name: importlib.import_module(m),
                OWN_DISTRIBUTION,
                own_version,
            )
        wanted = _wanted_plugins()
        found: set[str] = set()
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "?"
            dist_version = dist.version if dist is not None else "?"
            if wanted is not None and not {ep.name, dist_name} & wanted:
                continue
            found |= {ep.name, dist_name}
            self._register_module(ep.name, ep.load, dist_name, dist_version)
        for missing in sorted((wanted or set()) - found):
            installed = sorted({ep.name for ep in _entry_points()})
            self.plugins[missing] = PluginRecord(
                missing,
                "?",
                "?",
                f"{LOAD_PLUGINS_ENV} names {missing!r}, but no installed plugin has that "
                f"entry-point or distribution name (installed: {', '.join(installed) or 'none'})",
            )
        self._check_hook_names()
        self._collect("register_adapters", self.adapters, "adapter", self._register_adapter)
        self._collect("register_quantizers", self.quantizers, "quantizer", self._register_quantizer)

    def _register_module(self, name: str, loader: Any, dist: str, version: str) -> None:
        if name in self.plugins:
            self.plugins[f"{name} ({dist})"] = PluginRecord(
                name, dist, version, f"a plugin named {name!r} is already registered"
            )
            return
        try:
            module = loader()
            self.pm.register(module, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a plugin must not end the host
            self.plugins[name] = PluginRecord(name, dist, version, _describe_failure(exc))
            return
        self.plugins[name] = PluginRecord(name, dist, version)
        self._origin[name] = (dist, version)

    def _collect(
        self, hook_name: str, table: dict[str, Registration], kind: str, check: Any
    ) -> None:
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name
            dist = self._origin.get(plugin, ("?", "?"))[0]
            pending: list[Registration] = []

            def register(
                *args: Any,
                _pending: list[Registration] = pending,
                _plugin: str = plugin,
                _dist: str = dist,
            ) -> None:
                name, obj = check(*args)
                _pending.append(Registration(name, obj, _plugin, _dist))

            try:
                impl.function(register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - report by name, keep the others
                self._add_error(plugin, f"{hook_name} raised {_describe_failure(exc)}")
                continue
            for reg in pending:
                if reg.name in table:
                    self.conflicts.setdefault((kind, reg.name), [table[reg.name]]).append(reg)
                else:
                    table[reg.name] = reg

    def _add_error(self, plugin: str, msg: str) -> None:
        old = self.plugins[plugin]
        self.plugins[plugin] = PluginRecord(
            old.name,
            old.distribution,
            old.version,
            f"{old.error}; {msg}" if old.error else msg,  # keep every error of the plugin
        )

    def _check_hook_names(self) -> None:
        """Record hooks that match no hookspec (e.g. ``register_adaptors``) as the plugin's error
        (what ``pluggy.PluginManager.check_pending`` checks, but reported per plugin)."""
        known = sorted(name for name, hook in vars(self.pm.hook).items() if hook.has_spec())
        for name, hook in sorted(vars(self.pm.hook).items()):
            if hook.has_spec():
                continue
            for impl in hook.get_hookimpls():
                if impl.optionalhook or impl.plugin_name not in self.plugins:
                    continue
                self._add_error(
                    impl.plugin_name,
                    f"hook {name!r} matches no implicit_temperature hook (known: "
                    f"{', '.join(known)}){did_you_mean(name, known)}",
                )

    @staticmethod
    def _register_adapter(cls: Any) -> tuple[str, Any]:
        name = getattr(cls, "name", None)
        if not isinstance(cls, type) or not isinstance(name, str) or not name:
            raise PluginError(
                f"register() takes an adapter class with a non-empty str `name`, got {cls!r}"
            )
        for attr in ("handles", "draw", "quantize"):
            if not callable(getattr(cls, attr, None)):
                raise PluginError(f"adapter class {cls.__name__} has no callable {attr!r}")
        return name, cls

    @staticmethod
    def _register_quantizer(name: Any, factory: Any = None) -> tuple[str, Any]:
        if not isinstance(name, str) or not name or not callable(factory):
            raise PluginError(
                "register(name, factory) takes a non-empty str and a callable factory"
            )
        return name, factory

    # -- lookups --------------------------------------------------------------------------
    def lookup(self, kind: str, name: str) -> Registration:
        table = self.adapters if kind == "adapter" else self.quantizers
        if (kind, name) in self.conflicts:
            sources = ", ".join(
                f"{r.plugin} ({r.distribution})" for r in self.conflicts[(kind, name)]
            )
            raise PluginError(
                f"{kind} name {name!r} is registered by more than one plugin: {sources}. "
                "Uninstall or rename one of them."
            )
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise PluginError(
                f"no {kind} named {name!r} is registered (known: {known}); "
                "run `itemp plugins` to see what is installed"
            )
        return table[name]


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) while loading (SystemExit)"
    return f"{type(exc).__name__}: {exc}"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _wanted_plugins() -> set[str] | None:
    """Entry-point plugins to load: None for all; else the names given in ITEMP_LOAD_PLUGINS
    (empty set when autoloading is disabled and no names are given)."""
    names = os.environ.get(LOAD_PLUGINS_ENV)
    if names is not None:
        return {n.strip() for n in names.split(",") if n.strip()}
    if _env_flag(DISABLE_AUTOLOAD_ENV):
        return set()
    return None


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "source"


_lock = threading.RLock()  # re-entrant: a plugin that calls back while loading gets an error
_registry: _Registry | None = None
_loading = False


def _get() -> _Registry:
    global _registry, _loading
    with _lock:
        if _registry is None:
            if _loading:
                raise PluginError(
                    "a plugin used the implicit_temperature.plugins registry while plugins were "
                    "still loading (at import time or inside a register hook); move that call "
                    "into a function that runs later, e.g. the adapter's __init__"
                )
            _loading = True
            try:
                _registry = _Registry()
            finally:
                _loading = False
        return _registry


def reload_plugins() -> None:
    """Forget everything loaded and load all plugins again on next use (e.g. after pip install)."""
    global _registry
    with _lock:
        _registry = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The one pluggy PluginManager, with built-in and entry-point plugins registered."""
    return _get().pm


def get_adapters() -> dict[str, Registration]:
    """Registered adapters by name (conflicting names excluded; see :func:`plugin_errors`)."""
    reg = _get()
    return {k: v for k, v in reg.adapters.items() if ("adapter", k) not in reg.conflicts}


def get_quantizers() -> dict[str, Registration]:
    """Registered quantizer factories by name (conflicting names excluded)."""
    reg = _get()
    return {k: v for k, v in reg.quantizers.items() if ("quantizer", k) not in reg.conflicts}


def get_adapter(name: str) -> type:
    """The adapter class registered as ``name``; PluginError names the fix if there is none."""
    return cast(type, _get().lookup("adapter", name).obj)


def get_quantizer(name: str, **options: Any) -> Any:
    """A new quantizer from the factory registered as ``name``."""
    return _get().lookup("quantizer", name).obj(**options)


def list_plugins() -> list[PluginRecord]:
    """Every plugin seen, built-in and third-party, with its error (None when it loaded)."""
    return list(_get().plugins.values())


def plugin_errors() -> list[str]:
    """Human-readable problems: plugins that failed to load/register, and name conflicts."""
    reg = _get()
    out = [
        f"plugin {p.name!r} ({p.distribution}): {p.error}" for p in reg.plugins.values() if p.error
    ]
    for (kind, name), regs in reg.conflicts.items():
        sources = ", ".join(f"{r.plugin} ({r.distribution})" for r in regs)
        out.append(f"{kind} name {name!r} registered by more than one plugin: {sources}")
    return out
