"""``itemp``: the command line of implicit-temperature.

* ``itemp plugins [--json]``: adapters and quantizers with the plugin and distribution that
  provided each, every plugin seen, and plugin errors / name conflicts.
* ``itemp demo [NAME] [demo options]``: run one demo, or (no NAME) every available demo in order
  with default arguments. Each demo is a module defining ``add_arguments(parser)`` and
  ``run(args) -> int``; it is imported only when ``itemp demo`` needs it, and a demo that is
  missing or fails to import is shown as unavailable (with the reason) without breaking the rest.
* ``itemp sample MODEL --problems FILE --out DIR [options]``: a resumable sampling job over many
  problems (see :mod:`implicit_temperature.jobs`); runs under ``torchrun`` as well.
* ``itemp serve MODEL [--host] [--port] [--api-key]``: an OpenAI-compatible server (the
  ``[serve]`` extra; see :mod:`implicit_temperature.serve`).
* ``itemp --version``.

``itemp --help``, ``itemp sample --help`` and argument errors return without importing torch:
this module imports only the standard library at start, and each command imports what it needs.

Also runs as ``python -m implicit_temperature``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import __version__
from ._signals import SIGNALS as _SIGNALS

# Demo name -> module, in the order `itemp demo` runs them.
DEMOS: dict[str, str] = {
    "categorical": "implicit_temperature.demos.categorical",
    "calm": "implicit_temperature.demos.calm.demo",
    "diffusion": "implicit_temperature.demos.mixture.diffusion_demo",
    "flow": "implicit_temperature.demos.mixture.flow_demo",
    "digits": "implicit_temperature.demos.digits.demo",
    "answers": "implicit_temperature.demos.answers.demo",
}

_RULE = "=" * 78


@dataclass
class Demo:
    """One demo module: loaded (``module`` set) or unavailable (``error`` says why)."""

    name: str
    module_path: str
    module: ModuleType | None = None
    error: str | None = None
    optional: bool = False  # unavailable only because an optional third-party package is missing

    @property
    def summary(self) -> str:
        doc = (self.module.__doc__ or "").strip() if self.module else ""
        return doc.splitlines()[0] if doc else f"demo from {self.module_path}"


def load_demo(name: str) -> Demo:
    """Import the demo module ``DEMOS[name]``; never raises (failures land in ``Demo.error``)."""
    path = DEMOS[name]
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        optional = bool(missing) and missing.split(".")[0] != "implicit_temperature"
        hint = (
            "; install the optional dependency (e.g. pip install 'implicit-temperature[all]')"
            if optional
            else ""
        )
        return Demo(name, path, error=f"ModuleNotFoundError: {exc}{hint}", optional=optional)
    except Exception as exc:  # noqa: BLE001 - a broken demo must not break the others
        return Demo(name, path, error=f"{type(exc).__name__}: {exc}")
    for attr in ("add_arguments", "run"):
        if not callable(getattr(module, attr, None)):
            return Demo(name, path, error=f"{path} defines no callable {attr}()")
    return Demo(name, path, module=module)


def find_module(path: str) -> bool:
    """Whether module ``path`` exists, found without importing it or its parent packages (a
    package's ``__init__`` may import torch; ``itemp --help`` must stay fast)."""
    parts = path.split(".")
    spec = (
        importlib.util.find_spec(parts[0])
        if parts[0] not in sys.modules
        else getattr(sys.modules[parts[0]], "__spec__", None)
    )
    for part in parts[1:]:
        locations = getattr(spec, "submodule_search_locations", None) if spec else None
        if not locations:
            return False
        spec = importlib.machinery.PathFinder.find_spec(part, list(locations))
    return spec is not None


def demo_status(name: str) -> str:
    """Cheap availability for ``itemp --help``: finds the module without importing it."""
    try:
        found = find_module(DEMOS[name])
    except (ImportError, ValueError):  # a parent package that cannot be found
        found = False
    return "available" if found else f"unavailable (module {DEMOS[name]} not found)"


def _demos_to_load(argv: Sequence[str]) -> list[str]:
    """Which demo modules this command line needs: none, the one named, or all."""
    positional = [a for a in argv if not a.startswith("-")]
    if not positional or positional[0] != "demo":
        return []
    if len(positional) > 1 and positional[1] in DEMOS:
        return [positional[1]]
    return list(DEMOS)


class _Parsers:
    """``itemp``'s parser with its commands; the demos named in ``load`` are imported (their own
    options, or an unavailable entry), the others are listed by name only."""

    def __init__(self, load: Iterable[str], demo_status: bool = True) -> None:
        load = set(load)
        self.verbose = False  # -v anywhere: tracebacks of failing demos too
        self.demos: dict[str, Demo] = {}
        self.demo_parsers: dict[str, argparse.ArgumentParser] = {}
        self.parser = self._main_parser(epilog=self._epilog(status=demo_status and not load))
        sub = self.parser.add_subparsers(dest="command", metavar="COMMAND")
        self._add_plugins(sub)
        from .jobs import args as job_args

        self._add_command(
            sub,
            "sample",
            "run a resumable sampling job over many problems (torchrun-ready)",
            job_args,
            _cmd_sample,
        )
        from .serve import args as serve_args

        self._add_command(
            sub,
            "serve",
            "serve a model over an OpenAI-compatible API (completions, images)",
            serve_args,
            _cmd_serve,
        )
        self._add_demos(sub, load)

    @staticmethod
    def _main_parser(epilog: str) -> argparse.ArgumentParser:
        """The top-level ``itemp`` parser with ``--version`` and ``-v``, no commands yet."""
        parser = argparse.ArgumentParser(
            prog="itemp",
            description="implicit-temperature: temperature control for generative models that only "
            "hand out samples (CALM, diffusion, flow matching). Exact for T <= 1 (collision + "
            "Bernoulli factory), batch approximation for any T > 0.",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="show the traceback of an error (default: one line)",
        )
        return parser

    @staticmethod
    def _add_plugins(sub: Any) -> None:
        """The ``plugins`` command (``--json``)."""
        plugins = sub.add_parser(
            "plugins",
            help="list adapters, quantizers and plugins (with errors and conflicts)",
            description="List the registered adapters and quantizers with the plugin and "
            "distribution that provided each, every plugin seen, and plugin errors/conflicts.",
        )
        plugins.add_argument("--json", action="store_true", help="print JSON instead of tables")
        plugins.set_defaults(handler=_cmd_plugins)

    @staticmethod
    def _add_command(sub: Any, name: str, summary: str, module: ModuleType, handler: Any) -> None:
        """Command ``name`` (``summary`` in the list of commands) whose description, epilog and
        options come from ``module`` (its ``DESCRIPTION``, ``EPILOG`` and
        ``add_arguments(parser)``), run by ``handler(args)``."""
        parser = sub.add_parser(
            name,
            help=summary,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(parser)
        parser.set_defaults(handler=handler)

    def _add_demos(self, sub: Any, load: set[str]) -> None:
        """The ``demo`` command (no NAME: all demos) and one sub-command per demo, in order."""
        demo = sub.add_parser(
            "demo",
            help="run a demo (no NAME: every available demo, default arguments)",
            description="Run one demo, or with no NAME every available demo in the order "
            f"{', '.join(DEMOS)} with its default arguments. `itemp demo NAME --help` shows a "
            "demo's options.",
        )
        demo.set_defaults(handler=self._cmd_demo_all)
        demo_sub = demo.add_subparsers(dest="demo_name", metavar="NAME")
        for name in DEMOS:
            if name not in load:
                demo_sub.add_parser(name, help=f"demo from {DEMOS[name]}")
            else:
                self._add_loaded_demo(demo_sub, name)

    def _add_loaded_demo(self, demo_sub: Any, name: str) -> None:
        """Import demo ``name`` and add its sub-command: its own options, description and
        epilog, or (import or ``add_arguments`` failed) an entry that reports it unavailable."""
        info = self.demos[name] = load_demo(name)
        options = argparse.ArgumentParser(add_help=False)
        if info.module is not None:
            try:
                info.module.add_arguments(options)
            except Exception as exc:  # noqa: BLE001 - a broken demo must not break the others
                info.module = None
                info.error = f"add_arguments raised {type(exc).__name__}: {exc}"
        if info.module is None:
            sp = demo_sub.add_parser(
                name,
                help=f"UNAVAILABLE: {info.error}",
                description=f"unavailable: {info.error}",
            )
            sp.set_defaults(handler=lambda args, info=info: _unavailable(info))
            return
        sp = demo_sub.add_parser(  # the demo's options, description and epilog
            name,
            help=info.summary,
            parents=[options],
            epilog=options.epilog,
            description=options.description or (info.module.__doc__ or "").strip() or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sp.set_defaults(handler=lambda args, info=info: _run_demo(info, args))
        self.demo_parsers[name] = sp

    @staticmethod
    def _epilog(status: bool) -> str:
        lines = ["demos (itemp demo NAME):"]
        width = max(len(path) for path in DEMOS.values())
        for name, path in DEMOS.items():
            state = demo_status(name) if status else ""
            lines.append(f"  {name:<12} {path:<{width}}  {state}".rstrip())
        lines += [
            "",
            "examples:",
            "  itemp plugins",
            "  itemp demo categorical --help",
            "  itemp demo                 # every available demo, default arguments",
            "  itemp sample calm --problems implicit_temperature/demos/calm/prompts.jsonl "
            "--out runs/calm",
            "  itemp sample --help        # jobs: resumable, sharded with torchrun",
            "  itemp serve calm           # OpenAI-compatible server on 127.0.0.1:8000",
        ]
        return "\n".join(lines)

    def _cmd_demo_all(self, args: argparse.Namespace) -> int:
        status = 0
        report = []
        for name in DEMOS:
            info = self.demos.get(name) or load_demo(name)
            print(_RULE)
            print(f"itemp demo {name}  ({info.module_path})")
            print(_RULE, flush=True)
            if info.module is None:
                print(f"skipped: unavailable: {info.error}", flush=True)
                report.append((name, "unavailable" + (" (optional)" if info.optional else "")))
                status = status or (0 if info.optional else 1)
                continue
            start = time.perf_counter()
            try:
                rc = _run_demo(info, self.demo_parsers[name].parse_args([]))
            except SystemExit as exc:  # argparse or the demo exited (e.g. a required argument)
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # noqa: BLE001 - report it, run the remaining demos
                _report(f"demo {name}", exc, getattr(self, "verbose", False))
                rc = 1
            seconds = time.perf_counter() - start
            outcome = "ok" if rc == 0 else f"FAILED (exit {rc})"
            report.append((name, f"{outcome} in {seconds:.1f} s"))
            status = status or (1 if rc else 0)
            print(flush=True)
        print(_RULE)
        print("summary:")
        for name, line in report:
            print(f"  {name:<12} {line}")
        return status


def _unavailable(info: Demo) -> int:
    print(f"itemp demo {info.name}: unavailable: {info.error}", file=sys.stderr)
    return 1


def _run_demo(info: Demo, args: argparse.Namespace) -> int:
    assert info.module is not None
    rc = info.module.run(args)
    return int(rc) if rc is not None else 0


def _cmd_sample(args: argparse.Namespace) -> int:
    """``itemp sample``: run the job; library errors become one message and exit status 1,
    Ctrl-C / SIGTERM exit status 130 with the command that resumes."""
    import logging
    import shlex

    logging.basicConfig(level=logging.WARNING, format="itemp sample: %(message)s")
    if args.verbose:  # the job's own steps; the core's per-call lines stay at their level
        logging.getLogger("implicit_temperature.jobs").setLevel(logging.INFO)

    from .jobs import JobInterrupted, JobSpec, run_job  # imports torch: signals still deferred
    from .jobs.args import spec_kwargs

    command = "itemp " + shlex.join(args.argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # launched by torchrun (or an equivalent launcher)
        command = f"torchrun --nproc_per_node {world} -m implicit_temperature " + shlex.join(
            args.argv
        )
    _SIGNALS.raise_from_now()  # Ctrl-C from here on stops the job (what is on disk is kept)
    args.interrupt_message = (
        f"interrupted; finished results are kept in {args.out}: rerun `{command}` to resume"
    )
    try:
        summary = run_job(JobSpec(**spec_kwargs(args)), command=command)
    except JobInterrupted as exc:
        print(f"itemp sample: {exc}", file=sys.stderr)
        return 130
    if summary.results is None:  # one shard of a Slurm array / Ray job
        print(
            f"itemp sample: shard done: {summary.ran} results run in {summary.seconds:.1f} s "
            f"({summary.already_done} of {summary.units} were already done before); when "
            "every shard is done, run the same command without --shard to merge into "
            f"{summary.out / 'results.jsonl'}",
            file=sys.stderr,
        )
    elif summary.rank == 0:
        new = summary.units - summary.already_done
        rate = new / summary.seconds if summary.seconds > 0 else 0.0
        print(
            f"itemp sample: {summary.units} results in {summary.results} "
            f"({summary.already_done} already done; {new} run on {summary.world_size} "
            f"rank(s) in {summary.seconds:.1f} s, {rate:.2f} problems/s; rank 0 ran "
            f"{summary.ran})",
            file=sys.stderr,
        )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """``itemp serve``: load the model and serve until SIGTERM / Ctrl-C (exit 0); a missing
    ``[serve]`` extra or a model that cannot load is one message and exit status 1."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="itemp serve: %(message)s")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(
            f"itemp serve: error: {exc.name} is missing: pip install 'implicit-temperature[serve]'",
            file=sys.stderr,
        )
        return 1
    from .core.errors import ImplicitTemperatureError
    from .plugins import PluginError
    from .serve.args import config_kwargs
    from .serve.launcher import ServeConfig, serve_forever

    try:
        serve_forever(ServeConfig(**config_kwargs(args)))
    except (ImplicitTemperatureError, PluginError, ValueError, OSError) as exc:
        print(f"itemp serve: error: {exc}", file=sys.stderr)
        return 1
    return 0


def plugin_report() -> dict[str, Any]:
    """What ``itemp plugins`` shows, as plain data (also its ``--json`` output)."""
    from .plugins import get_adapters, get_quantizers, list_plugins, plugin_errors

    versions = {p.name: p.version for p in list_plugins()}

    def rows(table: dict) -> list[dict[str, str]]:
        return [
            {
                "name": name,
                "object": f"{getattr(reg.obj, '__module__', '?')}."
                f"{getattr(reg.obj, '__qualname__', type(reg.obj).__name__)}",
                "plugin": reg.plugin,
                "distribution": reg.distribution,
                "version": versions.get(reg.plugin, "?"),
            }
            for name, reg in sorted(table.items())
        ]

    return {
        "adapters": rows(get_adapters()),
        "quantizers": rows(get_quantizers()),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
            for p in list_plugins()
        ],
        "errors": plugin_errors(),
    }


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    head = "  " + "  ".join(c.upper().ljust(widths[c]) for c in columns)
    return [head.rstrip()] + [
        ("  " + "  ".join(str(r[c]).ljust(widths[c]) for c in columns)).rstrip() for r in rows
    ]


def _cmd_plugins(args: argparse.Namespace) -> int:
    report = plugin_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cols = ("name", "object", "plugin", "distribution", "version")
    lines = [
        "Adapters:",
        *_table(report["adapters"], cols),
        "",
        "Quantizers:",
        *_table(report["quantizers"], cols),
        "",
        "Plugins:",
    ]
    plugin_rows = [
        dict(p, status="ok" if p["error"] is None else "ERROR") for p in report["plugins"]
    ]
    lines += _table(plugin_rows, ("name", "distribution", "version", "status"))
    lines += ["", "Problems:"]
    lines += [f"  {e}" for e in report["errors"]] or ["  (none)"]
    print("\n".join(lines))
    return 0


def build_parser(load_demos: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The ``itemp`` parser; demo subcommands get their options from the demos in ``load_demos``."""
    return _Parsers(load_demos).parser


def _report(who: str, exc: BaseException, verbose: bool) -> None:
    """One line for an error (the traceback too with ``-v``)."""
    from .core.errors import ImplicitTemperatureError

    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    if isinstance(exc, ImplicitTemperatureError):
        print(f"itemp {who}: error: {exc}", file=sys.stderr)
    else:  # not an error of ours: a bug, or a plugin's or model's own failure
        hint = "" if verbose else " (rerun with -v for the traceback)"
        print(f"itemp {who}: error: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``itemp`` and ``python -m implicit_temperature``; returns the exit code.
    No error prints a traceback unless ``-v`` is given: errors of implicit-temperature become
    one line and exit status 1, Ctrl-C / SIGTERM exit status 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    command = next((a for a in argv if a[:1] != "-"), "")
    _SIGNALS.defer()
    args = None
    try:
        # demo availability in the top-level help costs imports of adapter packages: only for help
        wants_help = "-h" in argv or "--help" in argv or not command
        parsers = _Parsers(_demos_to_load(argv), demo_status=wants_help)
        parsers.verbose = verbose
        args = parsers.parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parsers.parser.print_help()
            return 0
        if args.command != "sample":
            _SIGNALS.raise_from_now()
        rc = int(args.handler(args))
    except KeyboardInterrupt:
        how = getattr(args, "interrupt_message", None) or "interrupted before anything was written"
        print(f"itemp {command}: {how}", file=sys.stderr)
        rc = 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback without -v
        _report(command, exc, verbose)
        rc = 1
    finally:
        _SIGNALS.restore()
    if command == "sample" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _exit_now(rc)
    return rc


def _exit_now(rc: int) -> None:
    """A torchrun rank after its job: the process group is destroyed and ``results.jsonl`` is
    final (or the error reported), so exit without the interpreter's teardown. Collective
    libraries keep native threads whose static destructors can abort a process at exit
    ("terminate called without an active exception", exit status 1 after a complete job)."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
