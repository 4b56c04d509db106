"""Plugins that cannot take the host down, misspelled hooks, and control over autoloading.

Each plugin is a real installed distribution (dist-info with an entry point on a temporary
sys.path entry), as in test_plugins.py.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from test_plugins import EXAMPLE_DIST, EXAMPLE_EP, example_entry_point, write_dist

from implicit_temperature.plugins import (
    get_adapters,
    get_quantizers,
    list_plugins,
    plugin_errors,
    reload_plugins,
)
from implicit_temperature.plugins.manager import DISABLE_AUTOLOAD_ENV, LOAD_PLUGINS_ENV

GOOD = """
import implicit_temperature

@implicit_temperature.hookimpl
def register_quantizers(register):
    register("{name}-q", lambda: (lambda samples: samples))
"""


@pytest.fixture
def dists(tmp_path, monkeypatch):
    """make(dist, entry_point, module, source) on a temp path; registry reloaded around the test."""
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(LOAD_PLUGINS_ENV, raising=False)
    reload_plugins()

    def make(dist: str, entry_point: str, module: str, source: str) -> None:
        write_dist(tmp_path, dist, entry_point, module, source)
        importlib.invalidate_caches()
        modules.append(module)
        reload_plugins()

    yield make
    for module in modules:
        sys.modules.pop(module, None)
    reload_plugins()


def records() -> dict:
    return {p.name: p for p in list_plugins()}


# -- item 9: sys.exit() at import ------------------------------------------------------------------
@pytest.mark.parametrize("source", ["import sys\nsys.exit(3)\n", "raise SystemExit('bye')\n"])
def test_plugin_calling_sys_exit_is_recorded_not_fatal(dists, source):
    dists("itemp-exiter", "exiter", "itemp_exiter_mod", source)
    dists("itemp-good", "good", "itemp_good_mod", GOOD.format(name="good"))
    rec = records()["exiter"]
    assert rec.error is not None and "sys.exit" in rec.error and "SystemExit" in rec.error
    assert any("exiter" in e and "sys.exit" in e for e in plugin_errors())
    assert "good-q" in get_quantizers(), "the other plugins still load"
    assert "exact" in get_quantizers()


def test_sys_exit_inside_a_hook_is_recorded(dists):
    dists(
        "itemp-hookexit",
        "hookexit",
        "itemp_hookexit_mod",
        """
import sys
import implicit_temperature

@implicit_temperature.hookimpl
def register_adapters(register):
    sys.exit(2)
""",
    )
    assert "register_adapters raised" in records()["hookexit"].error
    assert "diffusion" in get_adapters()


def test_itemp_plugins_survives_a_plugin_that_exits(tmp_path):
    write_dist(tmp_path, "itemp-exiter", "exiter", "itemp_exiter_mod", "import sys\nsys.exit(0)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    env.pop(DISABLE_AUTOLOAD_ENV, None)
    env.pop(LOAD_PLUGINS_ENV, None)
    out = subprocess.run(
        [sys.executable, "-m", "implicit_temperature", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "exiter" in out.stdout and "sys.exit" in out.stdout, out.stdout + out.stderr
    assert "diffusion" in out.stdout


def test_keyboard_interrupt_still_propagates(dists):
    with pytest.raises(KeyboardInterrupt):
        dists("itemp-ctrlc", "ctrlc", "itemp_ctrlc_mod", "raise KeyboardInterrupt\n")
        get_adapters()


# -- item 10: misspelled hooks --------------------------------------------------------------------
def test_misspelled_hook_is_reported_with_a_suggestion(dists):
    dists(
        "itemp-typo",
        "typo",
        "itemp_typo_mod",
        """
import implicit_temperature

@implicit_temperature.hookimpl
def register_adaptors(register):
    pass
""",
    )
    err = records()["typo"].error
    assert err is not None
    assert "'register_adaptors' matches no implicit_temperature hook" in err
    assert "did you mean 'register_adapters'" in err
    assert any("typo" in e for e in plugin_errors())
    assert "diffusion" in get_adapters(), "the other plugins still load"


def test_valid_plugins_have_no_hook_errors(dists):
    dists("itemp-good", "good", "itemp_good_mod", GOOD.format(name="good"))
    assert records()["good"].error is None
    assert all(r.error is None for r in list_plugins() if r.distribution == "implicit-temperature")


# -- item 11: autoloading switches ----------------------------------------------------------------
def test_disable_autoload_keeps_builtins_only(dists, monkeypatch):
    dists("itemp-good", "good", "itemp_good_mod", GOOD.format(name="good"))
    assert "good-q" in get_quantizers()
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    reload_plugins()
    assert "good-q" not in get_quantizers() and "good" not in records()
    assert {"exact", "grid"} <= set(get_quantizers())
    assert "diffusion" in get_adapters()
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "0")  # "0" means: do not disable
    reload_plugins()
    assert "good-q" in get_quantizers()


def test_load_only_named_plugins(dists, monkeypatch):
    dists("itemp-good", "good", "itemp_good_mod", GOOD.format(name="good"))
    dists("itemp-other", "other", "itemp_other_mod", GOOD.format(name="other"))
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "good")
    reload_plugins()
    assert "good-q" in get_quantizers() and "other-q" not in get_quantizers()
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "itemp-other")  # a distribution name works too
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")  # naming plugins overrides the switch
    reload_plugins()
    assert "other-q" in get_quantizers() and "good-q" not in get_quantizers()
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "")
    reload_plugins()
    assert not {"good-q", "other-q"} & set(get_quantizers())


def test_naming_a_plugin_that_is_not_installed_is_reported(dists, monkeypatch):
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "nosuch")
    reload_plugins()
    err = records()["nosuch"].error
    assert LOAD_PLUGINS_ENV in err and "no installed plugin" in err


def test_example_plugin_obeys_the_switch(dists, monkeypatch):
    example_entry_point()
    monkeypatch.setenv(LOAD_PLUGINS_ENV, EXAMPLE_DIST)
    reload_plugins()
    assert get_adapters()["example-dice"].plugin == EXAMPLE_EP
