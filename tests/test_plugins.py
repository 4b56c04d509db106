"""Plugin discovery through real entry points, and robustness against broken plugins.

The example package examples/itemp-example-plugin must be installed (``make setup`` does
``pip install -e examples/itemp-example-plugin``): it is found through its real entry point in
the group ``implicit_temperature`` (importlib.metadata), not through any test hook. Broken
plugins are real distributions too: a ``*.dist-info`` folder with an ``entry_points.txt`` on a
temporary ``sys.path`` entry, loaded by ``reload_plugins()``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.plugins import (
    PluginError,
    get_adapter,
    get_adapters,
    get_plugin_manager,
    get_quantizers,
    list_plugins,
    plugin_errors,
    reload_plugins,
)
from implicit_temperature.plugins.manager import ENTRY_POINT_GROUP
from implicit_temperature.plugins.sampler import AdapterSelectionError
from implicit_temperature.quantizers import QuantizerError, resolve_quantizer

EXAMPLE_EP = "itemp-example-dice"
EXAMPLE_DIST = "itemp-example-plugin"
INSTALL_HINT = (
    "the example plugin is not installed: run `make setup` or "
    "`.venv/bin/python -m pip install -e examples/itemp-example-plugin`"
)


def write_dist(path, dist: str, entry_point: str, module: str, source: str) -> None:
    """An installed distribution ``dist`` in folder ``path``: module file + dist-info."""
    (path / f"{module}.py").write_text(textwrap.dedent(source))
    info = path / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point} = {module}\n")


@pytest.fixture
def fresh_registry():
    reload_plugins()
    yield
    reload_plugins()


@pytest.fixture
def fake_dist(tmp_path, monkeypatch, fresh_registry):
    """make(dist, entry_point, module, source): a real installed distribution on a temp path."""
    modules: list[str] = []

    def make(dist: str, entry_point: str, module: str, source: str) -> None:
        write_dist(tmp_path, dist, entry_point, module, source)
        importlib.invalidate_caches()
        modules.append(module)
        reload_plugins()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for module in modules:
        sys.modules.pop(module, None)


def example_entry_point() -> importlib.metadata.EntryPoint:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == EXAMPLE_EP:
            return ep
    pytest.fail(INSTALL_HINT)


# -- discovery ---------------------------------------------------------------------------------
def test_example_plugin_is_a_real_entry_point():
    ep = example_entry_point()
    assert ep.value == "itemp_example_plugin.plugin"
    assert ep.dist is not None and ep.dist.metadata["Name"] == EXAMPLE_DIST


def test_example_adapter_and_quantizer_come_from_the_entry_point(fresh_registry):
    example_entry_point()
    reg = get_adapters()["example-dice"]
    assert (reg.plugin, reg.distribution) == (EXAMPLE_EP, EXAMPLE_DIST)
    assert reg.obj.__module__ == "itemp_example_plugin.adapter"
    qreg = get_quantizers()["example-parity"]
    assert (qreg.plugin, qreg.distribution) == (EXAMPLE_EP, EXAMPLE_DIST)
    assert get_plugin_manager().get_plugin(EXAMPLE_EP) is importlib.import_module(
        "itemp_example_plugin.plugin"
    )
    record = {p.name: p for p in list_plugins()}[EXAMPLE_EP]
    assert record.error is None and record.version == "0.1.0"
    assert not plugin_errors() or all(EXAMPLE_EP not in e for e in plugin_errors())


def test_without_the_entry_point_the_adapter_is_gone(fresh_registry, monkeypatch):
    """Discovery really goes through importlib.metadata: hide the entry points, lose the adapter."""
    example_entry_point()
    from implicit_temperature.plugins import manager

    monkeypatch.setattr(manager, "_entry_points", lambda: [])
    reload_plugins()
    assert "example-dice" not in get_adapters()
    assert "exact" in get_quantizers(), "built-in plugins do not depend on entry points"


def test_sampler_finds_the_adapter_through_handles(fresh_registry):
    example_entry_point()
    from itemp_example_plugin import DiceAdapter, LoadedDie

    sampler = it.TemperatureSampler(LoadedDie([0.5, 0.5]))
    assert type(sampler.adapter) is DiceAdapter
    named = it.TemperatureSampler(LoadedDie([1.0]), adapter="example-dice")
    assert type(named.adapter) is DiceAdapter
    with pytest.raises(AdapterSelectionError, match="example-dice"):
        it.TemperatureSampler(object())


def test_two_adapters_claiming_one_model_is_a_clear_error(fake_dist):
    """Several handles() == True: no guess; the error names both and how to choose one."""
    fake_dist(
        "itemp-greedy",
        "greedy",
        "itemp_greedy_mod",
        """
import implicit_temperature
from itemp_example_plugin import DiceAdapter

class GreedyDice(DiceAdapter):
    name = "greedy-dice"

@implicit_temperature.hookimpl
def register_adapters(register):
    register(GreedyDice)
""",
    )
    from itemp_example_plugin import LoadedDie

    with pytest.raises(AdapterSelectionError) as info:
        it.TemperatureSampler(LoadedDie([0.5, 0.5]))
    message = str(info.value)
    assert "'example-dice'" in message and "'greedy-dice'" in message
    assert "adapter='example-dice'" in message
    chosen = it.TemperatureSampler(LoadedDie([0.5, 0.5]), adapter="greedy-dice")
    assert chosen.adapter.name == "greedy-dice"


# -- robustness --------------------------------------------------------------------------------
def test_plugin_raising_on_import_is_reported_and_skipped(fake_dist):
    fake_dist(
        "itemp-broken-import",
        "broken-import",
        "itemp_broken_import_mod",
        "raise RuntimeError('boom on import')\n",
    )
    errors = plugin_errors()
    assert any(
        e.startswith("plugin 'broken-import' (itemp-broken-import): RuntimeError: boom on import")
        for e in errors
    ), errors
    record = {p.name: p for p in list_plugins()}["broken-import"]
    assert record.distribution == "itemp-broken-import" and "boom on import" in record.error
    assert "example-dice" in get_adapters(), "the other plugins still load"
    assert {"exact", "grid", "codebook", "classifier"} <= set(get_quantizers())


def test_plugin_raising_in_its_hook_is_reported_and_registers_nothing(fake_dist):
    fake_dist(
        "itemp-broken-hook",
        "broken-hook",
        "itemp_broken_hook_mod",
        """
        import implicit_temperature
        from implicit_temperature import Adapter

        class HalfDone(Adapter):
            name = "half-done"

            @classmethod
            def handles(cls, model):
                return False

            def draw(self, n, generator=None):
                raise NotImplementedError

            def quantize(self, samples):
                raise NotImplementedError

        @implicit_temperature.hookimpl
        def register_adapters(register):
            register(HalfDone)
            raise ValueError("boom in hook")
    """,
    )
    errors = plugin_errors()
    expected = (
        "'broken-hook' (itemp-broken-hook): register_adapters raised ValueError: boom in hook"
    )
    assert any(expected in e for e in errors), errors
    assert "half-done" not in get_adapters(), "a failing hook's registrations are dropped"
    assert "example-dice" in get_adapters()


def test_errors_in_both_hooks_are_both_reported(fake_dist):
    fake_dist(
        "itemp-two-bad-hooks",
        "two-bad-hooks",
        "itemp_two_bad_hooks_mod",
        """
        import implicit_temperature

        @implicit_temperature.hookimpl
        def register_adapters(register):
            raise KeyError("adapters")

        @implicit_temperature.hookimpl
        def register_quantizers(register):
            raise TypeError("quantizers")
    """,
    )
    error = {p.name: p for p in list_plugins()}["two-bad-hooks"].error
    assert "register_adapters raised KeyError: 'adapters'" in error
    assert "register_quantizers raised TypeError: quantizers" in error


def test_invalid_registration_is_reported(fake_dist):
    fake_dist(
        "itemp-bad-register",
        "bad-register",
        "itemp_bad_register_mod",
        """
        import implicit_temperature

        @implicit_temperature.hookimpl
        def register_adapters(register):
            register("not a class")
    """,
    )
    assert any(
        "'bad-register'" in e and "adapter class with a non-empty str `name`" in e
        for e in plugin_errors()
    ), plugin_errors()
    assert "example-dice" in get_adapters()


def test_duplicate_adapter_name_is_an_error_naming_both_sources(fake_dist):
    example_entry_point()
    fake_dist(
        "itemp-dupe",
        "dupe-dice",
        "itemp_dupe_mod",
        """
        import implicit_temperature
        from itemp_example_plugin import DiceAdapter

        class OtherDice(DiceAdapter):
            name = "example-dice"

        @implicit_temperature.hookimpl
        def register_adapters(register):
            register(OtherDice)
    """,
    )
    errors = [e for e in plugin_errors() if "adapter name 'example-dice'" in e]
    assert errors and f"{EXAMPLE_EP} ({EXAMPLE_DIST})" in errors[0]
    assert "dupe-dice (itemp-dupe)" in errors[0]
    with pytest.raises(PluginError, match="more than one plugin") as info:
        get_adapter("example-dice")
    assert "itemp-example-dice (itemp-example-plugin)" in str(info.value)
    assert "dupe-dice (itemp-dupe)" in str(info.value)
    assert "example-dice" not in get_adapters(), "neither is used silently"


def test_duplicate_quantizer_name_is_an_error_naming_both_sources(fake_dist):
    fake_dist(
        "itemp-dupe-grid",
        "dupe-grid",
        "itemp_dupe_grid_mod",
        """
        import implicit_temperature

        @implicit_temperature.hookimpl
        def register_quantizers(register):
            register("grid", lambda **options: (lambda samples: samples.long()))
    """,
    )
    with pytest.raises(
        QuantizerError,
        match=r"quantizer name 'grid' registered by more than one "
        r"plugin: implicit_temperature\.quantizers\.plugin "
        r"\(implicit-temperature\), dupe-grid",
    ):
        resolve_quantizer("grid", cell_size=1.0)
    assert torch.equal(resolve_quantizer("exact")(torch.tensor([2, 3])), torch.tensor([2, 3]))


def test_plugin_using_the_registry_while_loading_fails_cleanly(tmp_path):
    """A plugin that calls the registry at import time gets an error, not a deadlock.

    Run in a subprocess so that a regression (a hang) cannot block the test session.
    """
    write_dist(
        tmp_path,
        "itemp-reentrant",
        "reentrant",
        "itemp_reentrant_mod",
        "import implicit_temperature.plugins as p\np.get_quantizers()\n",
    )
    code = (
        "import implicit_temperature.plugins as p\n"
        "print('\\n'.join(p.plugin_errors()))\nprint(sorted(p.get_quantizers()))\n"
    )
    env_path = [str(tmp_path), *sys.path]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "plugin 'reentrant' (itemp-reentrant): PluginError: a plugin used the" in out.stdout
    assert "'exact'" in out.stdout
