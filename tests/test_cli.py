"""The ``itemp`` command: --version, --help, plugins, and demo dispatch with broken/missing demos.

Demo dispatch is tested with small fake demo modules (the real demos are run by ``make demo``
and by their owners' tests); ``cli.DEMOS`` is pointed at them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import default_sigint

import implicit_temperature
from implicit_temperature import cli
from implicit_temperature.plugins import reload_plugins

REPO = Path(__file__).resolve().parents[1]


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- basics ------------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"itemp {implicit_temperature.__version__}"


def test_help_lists_commands_and_demos_without_importing_them(capsys):
    before = set(sys.modules)
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("plugins", "demo", "--version", *cli.DEMOS.values()):
        assert word in out
    imported = {m for m in set(sys.modules) - before if m in cli.DEMOS.values()}
    assert not imported, f"--help imported demo modules {imported}"


def test_no_command_prints_help(capsys):
    rc, out, _ = run_main(capsys)
    assert rc == 0 and "usage: itemp" in out


# -- plugins -----------------------------------------------------------------------------------
def test_plugins_lists_adapters_quantizers_and_sources(capsys):
    reload_plugins()
    rc, out, _ = run_main(capsys, "plugins")
    assert rc == 0
    lines = out.splitlines()
    dice = next(line for line in lines if line.strip().startswith("example-dice "))
    assert "itemp_example_plugin.adapter.DiceAdapter" in dice
    assert "itemp-example-dice" in dice and "itemp-example-plugin" in dice and "0.1.0" in dice
    grid = next(line for line in lines if line.strip().startswith("grid "))
    assert "implicit_temperature.quantizers.plugin" in grid and "implicit-temperature" in grid
    for header in ("Adapters:", "Quantizers:", "Plugins:", "Problems:"):
        assert header in lines


def test_plugins_json_matches_the_registry(capsys):
    reload_plugins()
    rc, out, _ = run_main(capsys, "plugins", "--json")
    data = json.loads(out)
    assert rc == 0 and set(data) == {"adapters", "quantizers", "plugins", "errors"}
    dice = next(a for a in data["adapters"] if a["name"] == "example-dice")
    assert dice == {
        "name": "example-dice",
        "object": "itemp_example_plugin.adapter.DiceAdapter",
        "plugin": "itemp-example-dice",
        "distribution": "itemp-example-plugin",
        "version": "0.1.0",
    }
    assert {"exact", "grid", "codebook", "classifier", "example-parity"} <= {
        q["name"] for q in data["quantizers"]
    }
    assert data["errors"] == implicit_temperature.plugins.plugin_errors()


def test_plugins_shows_broken_plugins(capsys, tmp_path, monkeypatch):
    module = "itemp_cli_broken_mod"
    (tmp_path / f"{module}.py").write_text("raise ImportError('needs libfoo')\n")
    info = tmp_path / "itemp_cli_broken-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: itemp-cli-broken\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[implicit_temperature]\ncli-broken = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reload_plugins()
    try:
        rc, out, _ = run_main(capsys, "plugins")
    finally:
        sys.modules.pop(module, None)
        reload_plugins()
    assert rc == 0
    problems = out.split("Problems:")[1]
    assert "plugin 'cli-broken' (itemp-cli-broken): ImportError: needs libfoo" in problems
    row = next(line for line in out.splitlines() if line.strip().startswith("cli-broken "))
    assert "ERROR" in row and "itemp-cli-broken" in row
    assert any(line.strip().startswith("example-dice ") for line in out.splitlines())


def test_console_script_and_module_entry(tmp_path):
    """``itemp plugins`` as the installed console script and ``python -m implicit_temperature``."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    module = subprocess.run(
        [sys.executable, "-m", "implicit_temperature", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert module.returncode == 0, module.stderr
    names = {a["name"] for a in json.loads(module.stdout)["adapters"]}
    assert "example-dice" in names
    script = Path(sys.executable).parent / "itemp"
    if not script.exists():
        pytest.skip("the itemp console script is not installed (run `make setup`)")
    out = subprocess.run(
        [str(script), "plugins"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "example-dice" in out.stdout and "itemp-example-plugin" in out.stdout


# -- demo dispatch -----------------------------------------------------------------------------
@pytest.fixture
def fake_demos(tmp_path, monkeypatch):
    """cli.DEMOS -> good, import-broken, missing, run-failing and missing-dependency demos."""
    pkg = tmp_path / "itemp_fake_demos"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(
        textwrap.dedent('''
        """A good demo: prints its arguments."""
        RUNS = []

        def add_arguments(parser):
            parser.add_argument("--faces", type=int, default=6, help="number of faces")

        def run(args):
            RUNS.append(args.faces)
            print(f"good demo ran with faces={args.faces}")
            return 0
    ''')
    )
    (pkg / "broken.py").write_text("raise RuntimeError('demo import exploded')\n")
    (pkg / "fails.py").write_text(
        textwrap.dedent("""
        def add_arguments(parser):
            pass

        def run(args):
            raise ValueError("demo run exploded")
    """)
    )
    (pkg / "needs_dep.py").write_text("import itemp_no_such_dependency_xyz\n")
    (pkg / "no_run.py").write_text("def add_arguments(parser):\n    pass\n")
    (pkg / "bad_args.py").write_text(
        textwrap.dedent("""
        def add_arguments(parser):
            parser.add_argument("--x")
            parser.add_argument("--x")

        def run(args):
            return 0
    """)
    )
    (pkg / "needs_arg.py").write_text(
        textwrap.dedent("""
        def add_arguments(parser):
            parser.add_argument("--must", required=True)

        def run(args):
            return 0
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    demos = {
        "good": "itemp_fake_demos.good",
        "broken": "itemp_fake_demos.broken",
        "missing": "itemp_fake_demos.not_there",
        "fails": "itemp_fake_demos.fails",
        "needs-dep": "itemp_fake_demos.needs_dep",
        "no-run": "itemp_fake_demos.no_run",
        "bad-args": "itemp_fake_demos.bad_args",
        "needs-arg": "itemp_fake_demos.needs_arg",
    }
    monkeypatch.setattr(cli, "DEMOS", demos)
    yield demos
    for name in [m for m in sys.modules if m.startswith("itemp_fake_demos")]:
        del sys.modules[name]


def test_demo_runs_one_with_its_own_arguments_importing_only_it(capsys, fake_demos):
    rc, out, _ = run_main(capsys, "demo", "good", "--faces", "3")
    assert rc == 0 and "good demo ran with faces=3" in out
    assert "itemp_fake_demos.broken" not in sys.modules, "other demos are imported lazily"
    assert sys.modules["itemp_fake_demos.good"].RUNS == [3]


def test_demo_help_shows_unavailable_demos_with_reasons(capsys, fake_demos):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps help lines
    assert "good A good demo: prints its arguments." in out
    assert "broken UNAVAILABLE: RuntimeError: demo import exploded" in out
    assert (
        "missing UNAVAILABLE: ModuleNotFoundError: No module named 'itemp_fake_demos.not_there'"
    ) in out
    assert "no-run UNAVAILABLE: itemp_fake_demos.no_run defines no callable run()" in out
    assert "needs-dep UNAVAILABLE" in out and "install the optional dependency" in out
    assert "bad-args UNAVAILABLE: add_arguments raised ArgumentError" in out
    with pytest.raises(SystemExit):
        cli.main(["demo", "good", "--help"])
    assert "--faces FACES" in capsys.readouterr().out


def test_demo_help_top_level_marks_missing_modules(capsys, fake_demos):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "unavailable (module itemp_fake_demos.not_there not found)" in out
    good = next(line for line in out.splitlines() if line.strip().startswith("good "))
    assert "available" in good and "unavailable" not in good


def test_unavailable_demo_by_name_fails_with_reason(capsys, fake_demos):
    rc, out, err = run_main(capsys, "demo", "broken")
    assert rc == 1 and "itemp demo broken: unavailable: RuntimeError: demo import exploded" in err


def test_demo_without_name_runs_every_available_demo_in_order(capsys, fake_demos):
    rc, out, _ = run_main(capsys, "demo")
    assert rc == 1, "a broken (not merely optional) demo or a failing run makes the exit status 1"
    headers = [line for line in out.splitlines() if line.startswith("itemp demo ")]
    assert [h.split()[2] for h in headers] == list(fake_demos)
    assert "good demo ran with faces=6" in out, "default arguments"
    summary = out.split("summary:")[1]
    assert "good         ok in" in summary
    assert "broken       unavailable" in summary
    assert "fails        FAILED (exit 1)" in summary
    assert "needs-dep    unavailable (optional)" in summary
    assert "bad-args     unavailable\n" in summary
    assert "needs-arg    FAILED (exit 2)" in summary, "a required argument fails only that demo"


def test_failing_demos_print_one_line_and_a_traceback_only_with_v(capsys, fake_demos):
    rc, out, err = run_main(capsys, "demo", "fails")
    assert rc == 1 and "Traceback" not in err, err
    assert err.strip() == (
        "itemp demo: error: ValueError: demo run exploded (rerun with -v for the traceback)"
    )
    rc, out, err = run_main(capsys, "demo")
    assert rc == 1 and "Traceback" not in out + err
    assert "itemp demo fails: error: ValueError: demo run exploded" in err
    rc, out, err = run_main(capsys, "-v", "demo", "fails")
    assert rc == 1 and "Traceback" in err


def test_demo_all_succeeds_when_only_optional_dependencies_are_missing(
    capsys, fake_demos, monkeypatch
):
    monkeypatch.setattr(cli, "DEMOS", {k: fake_demos[k] for k in ("good", "needs-dep")})
    rc, out, _ = run_main(capsys, "demo")
    assert rc == 0 and "good demo ran" in out and "skipped: unavailable" in out


def test_unknown_demo_is_a_usage_error(capsys, fake_demos):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "nope"])
    assert info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["itemp"] == "implicit_temperature.cli:main" and callable(cli.main)


def test_real_demo_table():
    assert list(cli.DEMOS) == ["categorical", "calm", "diffusion", "flow", "digits", "answers"]
    assert cli.DEMOS["flow"] == "implicit_temperature.demos.mixture.flow_demo"


# -- fast start: no torch for help and argument errors ----------------------------------------
PROBE = """
import json, sys
from implicit_temperature import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        ([], 0),
        (["sample", "--help"], 0),
        (["sample", "calm", "--problems", "p.jsonl"], 2),  # --out missing
        (["sample", "calm", "--problems", "p.jsonl", "--out", "o", "-t", "0"], 2),
        (["sample", "calm", "--num-problems", "0", "--out", "o"], 2),
        (["sample", "calm", "--problems", "p", "--num-problems", "3", "--out", "o"], 2),
        (["sample", "calm", "--problems", "p", "--out", "o", "-o", "novalue"], 2),
        (["nope"], 2),
    ],
)
def test_help_and_argument_errors_do_not_import_torch(argv, code):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": code, "torch": False}, proc.stderr


def test_module_entry_help_imports_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "implicit_temperature", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0 and "sample" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "implicit_temperature.cli" in imported


def _options(parser):
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def _subparser(parser, *names):
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_sample_help_gives_every_option_a_line_with_its_default():
    sample = _subparser(cli.build_parser(), "sample")
    options = _options(sample)
    assert {
        "--out",
        "--temperature",
        "--method",
        "--plan",
        "--num-outputs",
        "--seed",
        "--adapter",
        "--quantizer",
        "--adapter-option",
        "--device",
    } <= {s for a in options for s in a.option_strings}
    for action in options:
        assert action.help, f"{action.option_strings} has no help"
        assert "(default" in action.help or "(required" in action.help, action.option_strings
    text = sample.format_help()
    assert "(default: auto)" in text and "(default: 0.5)" in text
    assert "docs/scaling.md" in text and "torchrun --nproc_per_node" in text


def test_demo_calm_help_gives_every_option_its_default():
    calm = _subparser(cli.build_parser(["calm"]), "demo", "calm")
    for action in _options(calm):
        assert action.help and "(default: " in action.help, action.option_strings
    assert "(default: 0.5)" in calm.format_help()


def test_top_level_help_columns_are_aligned(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("  ") and line.rstrip().endswith("available")
    ]
    assert len(rows) == len(cli.DEMOS)
    assert len({line.rindex(" available") for line in rows}) == 1, rows


# -- itemp sample ------------------------------------------------------------------------------
PROMPTS = REPO / "implicit_temperature" / "demos" / "calm" / "prompts.jsonl"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sample_stops_cleanly_on_ctrl_c_and_says_how_to_resume(tmp_path, sig):
    out = tmp_path / "job"
    argv = [
        "sample",
        "calm",
        "--problems",
        str(PROMPTS),
        "-t",
        "0.3",
        "0.5",
        "0.7",
        "--method",
        "exact",
        "--num-outputs",
        "8",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "implicit_temperature", *argv],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=default_sigint,
    )
    part = out / "parts" / "rank-0.jsonl"
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    saved = part.read_text().splitlines()
    assert 1 <= len(saved) < 36 and all(json.loads(line)["id"] for line in saved)
    assert f"interrupted: {len(saved)} of 36 results are saved in {out}" in err
    assert f"rerun `itemp {shlex.join(argv)}` to resume" in err


def test_sample_errors_are_one_line_with_exit_status_1(tmp_path, capsys):
    rc = cli.main(["sample", "nope", "--num-problems", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("itemp sample: error: unknown model 'nope'")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "cat "}\n{"prompt": "dog "\n')
    rc = cli.main(["sample", "calm", "--problems", str(bad), "--out", str(tmp_path / "o")])
    assert rc == 1 and f"{bad}:2: not valid JSON" in capsys.readouterr().err


def test_readme_job_command_parses_and_its_prompts_file_is_shipped():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Sampling jobs")[1].split("```bash")[1].split("```")[0]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[0].endswith("itemp") and argv[1] == "sample"
    args = cli.build_parser().parse_args(argv[1:])
    assert (REPO / args.problems).is_file() and args.model == "calm"
    quick = readme.split("## Quick start")[1].split("```bash")[1].split("```")[0]
    assert len([line for line in quick.splitlines() if line.strip()]) == 2
