"""Smoke test of the benchmarks: ``python -m benchmarks --quick --out PATH`` produces the report.

It checks that every section's table is there and that its numbers parse (and the few that are
facts, not speeds, hold: TVs lie in [0, 1], the published rule matches ours to float rounding).
It never asserts a speed: benchmarks measure, they do not fail CI on a slow machine.

The command runs this package's own sections (``--only selection exact accuracy auto``, about
15 s); the end-to-end modules (``bench_calm``, ``bench_diffusion``) belong to the adapters and
cost another ~20 s, so here their wrapper is checked on a missing module and a fake result.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OWN = ("selection", "exact", "accuracy", "auto")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$|^inf$")


def _tables(text: str) -> dict[str, list[list[list[str]]]]:
    """Markdown tables under each heading: {heading: [table, ...]}, a table = rows of cells."""
    tables: dict[str, list[list[list[str]]]] = {}
    heading, inside = "", False
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        is_row = line.startswith("|")
        if is_row and not line.startswith("|---"):
            if not inside:
                tables.setdefault(heading, []).append([])
            tables[heading][-1].append([c.strip() for c in line.strip("|").split("|")])
        inside = is_row
    return tables


def _section(text: str, prefix: str) -> list[list[list[str]]]:
    (found,) = [v for k, v in _tables(text).items() if k.startswith(prefix)]
    return found


def _number(cell: str) -> float:
    """A table cell as a float: strips bold, a trailing 'x' and a '± SE' part."""
    cell = cell.replace("*", "").split("±")[0].strip().removesuffix("x")
    assert NUMBER.match(cell), f"not a number: {cell!r}"
    return float(cell)


def _column(rows: list[list[str]], name: str) -> list[str]:
    header = rows[0]
    assert name in header, f"column {name!r} missing from {header}"
    i = header.index(name)
    return [r[i] for r in rows[1:]]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--only", *OWN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists(), "the report was not written to --out"
    return out.read_text(encoding="utf-8"), out.parent


def test_header_names_machine_torch_date_and_command(report: tuple[str, Path]) -> None:
    text, _ = report
    rows = {r[0]: r[1] for r in _section(text, "Machine and commands")[0]}
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", rows["date (UTC)"])
    assert rows["torch"] and rows["mode"] == "quick"
    assert "python -m benchmarks --quick --out" in text


def test_selection_table_parses(report: tuple[str, Path]) -> None:
    text, _ = report
    (rows,) = _section(text, "1. Selection speed")
    sizes = {(int(b), int(n)) for b, n in zip(_column(rows, "B"), _column(rows, "N"), strict=True)}
    assert (256, 200) in sizes
    for name in ("published loop (ms)", "tuned loop (ms)", "ratio", "ratio, 1 thread"):
        assert all(_number(c) > 0 for c in _column(rows, name))


def test_exact_table_parses(report: tuple[str, Path]) -> None:
    text, _ = report
    trees, single, flat, scaling = _section(text, "2. Exact sampler")
    temps = sorted({_number(c) for c in _column(flat, "T")})
    assert temps == [0.25, 0.37, 0.5, 0.8, 0.9]
    for ratio in _column(flat, "measured / expected"):
        assert 0 < _number(ratio) < float("inf")
    assert all(_number(c) > 0 for c in _column(scaling, "measured / expected"))
    # collision trees: two laws, T down to 0.05, the best tree never above the flat rounds
    assert len(set(_column(trees, "law"))) == 2
    assert min(_number(c) for c in _column(trees, "T")) == 0.05
    flat_cost = _column(trees, "flat rounds (expected)")
    pairs = zip(flat_cost, _column(trees, "best tree (expected)"), strict=True)
    assert all(_number(b) <= _number(f) * (1 + 1e-9) for f, b in pairs)
    assert all(_number(c) > 0 for c in _column(trees, "measured / best tree"))
    assert all(_number(c) > 0 for c in _column(single, "draws / best tree"))


def test_accuracy_tables_parse(report: tuple[str, Path]) -> None:
    text, _ = report
    section = text.split("## 3. Accuracy")[1].split("## 4.")[0]
    tables = _tables("## x\n" + section)["x"]
    assert len(tables) == 2  # one per law
    rows = [r for t in tables for r in t[1:]]
    assert len(rows) == 10  # 5 temperatures x 2 laws
    for row in rows:
        for cell in row[1:]:
            ours, plugin = (_number(c) for c in cell.split("/"))
            assert 0.0 <= ours <= 1.0 and 0.0 <= plugin <= 1.0
    diff = re.search(r"Largest absolute difference over \d+ settings: \*\*([^*]+)\*\*", section)
    assert diff is not None and float(diff.group(1)) < 1e-9


def test_auto_section(report: tuple[str, Path]) -> None:
    text, _ = report
    (rows,) = _section(text, "4. What")
    methods = {c.strip("*") for c in _column(rows, "method")}
    assert methods == {"exact", "batch", "DrawBudgetExceeded"}
    assert all(_number(c) >= 1 for c in _column(rows, "draws"))
    assert "## 5. End to end" not in text  # not requested with --only


def test_end_to_end_reports_missing_module_and_renders_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is a top-level folder, not installed
    from benchmarks import end_to_end, report

    missing = end_to_end.run_module("bench_does_not_exist", quick=True)
    assert missing["status"].startswith("not available: ModuleNotFoundError")
    fake = {
        "device": "cpu",
        "settings": {
            "T=1": {"seconds": 0.5, "tokens_per_s": 100.0},
            "T=0.5 batch N=200": {"seconds": 2.0, "tokens_per_s": 25.0},
        },
    }
    text = report.end_to_end_section(
        {"bench_calm": {"status": "ok", "result": fake, "seconds": 2.5}, "bench_diffusion": missing}
    )
    assert "| T=0.5 batch N=200 | 2.00 | 25.0 |" in text
    assert "not available: ModuleNotFoundError" in text.split("bench_diffusion.py")[1]


def test_figures_written_as_png(report: tuple[str, Path]) -> None:
    text, folder = report
    for name in ("accuracy_vs_N.png", "cost_vs_T.png", "selection_speed.png"):
        assert f"(figures/{name})" in text
        assert (folder / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missed_target_is_flagged_on_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """batch / keep-first 1.109 against a 1.1 target must read as missed, not pass silently."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import report

    assert report.target_note(1.109, 1.1, "<=") == "(target <= 1.10: **MISSED**)"
    assert report.target_note(1.05, 1.1, "<=") == "(target <= 1.10: met)"
    assert report.target_note(9.9, 10.0, ">=").endswith("**MISSED**)")
    speed = {"batch_over_keep_first": 1.109, "batch_over_keep_first_target": 1.1}
    e2e = {"bench_calm": {"status": "ok", "result": {"speed": speed}, "seconds": 1.0}}
    text = report.summary({"end_to_end": e2e})
    assert "1.109 (target <= 1.10: **MISSED**)" in text


def test_a_headline_ratio_shows_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import report

    def row(b: int, n: int, ratio: float) -> dict:
        return {
            "T": 0.5,
            "B": b,
            "N": n,
            "speedup_vs_published": ratio,
            "speedup_best_vs_published": ratio,
            "speedup_1thread_vs_published": ratio,
            "ours_s": 1e-3,
            "published_s": 1e-3 * ratio,
        }

    sel = {"threads": 2, "rows": [row(256, 200, 26.0), row(32, 64, 0.74), row(32, 1000, 0.70)]}
    text = report.summary({"selection": sel})
    assert "**26.0x** (target >= 10.0: met)" in text
    assert "ranges from 0.70x to 26.0x" in text
    assert "B = 32, N = 1000: 0.70x" in text  # the settings where the loop wins are named


def test_sections_registry_drives_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import __main__ as cli
    from benchmarks.sections import sections

    names = [s.name for s in sections()]
    assert tuple(names) == cli.SECTIONS and len(set(names)) == len(names)
    assert "demos" in names
    assert cli.parse_args(["--only", "demos"]).only == ["demos"]


def test_update_reruns_some_sections_and_keeps_the_others(report: tuple[str, Path]) -> None:
    """``--update --only selection`` on the report above: the record beside it keeps the other
    sections' results, the page holds all of them again and says which run produced which."""
    import json
    import shutil

    text, folder = report
    out = folder / "updated" / "benchmarks.md"
    out.parent.mkdir()
    shutil.copy(folder / "benchmarks.md", out)
    shutil.copy(folder / "benchmarks.json", out.with_suffix(".json"))
    before = json.loads(out.with_suffix(".json").read_text())["sections"]
    assert list(before) == list(OWN)
    date = before["exact"]["run"]["date"]
    for entry in before.values():  # as if the record came from an earlier run
        entry["run"]["date"] = "2000-01-01 00:00"
    out.with_suffix(".json").write_text(json.dumps({"sections": before}))
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--update", "--only", "selection"]
    proc = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads(out.with_suffix(".json").read_text())["sections"]
    assert list(after) == list(OWN)
    assert after["exact"]["result"] == before["exact"]["result"]  # kept, not rerun
    assert after["selection"]["run"]["date"] >= date  # rerun now
    page = out.read_text(encoding="utf-8")
    assert "2000-01-01 00:00 UTC" in page and "more than one run" in page
    for prefix in ("1. Selection", "2. Exact", "3. Accuracy", "4. What"):
        assert _section(page, prefix) == _section(text, prefix) or prefix == "1. Selection"


def test_record_round_trips_non_string_keys(tmp_path: Path) -> None:
    """A section keyed by tolerance (floats) or by (law, T) tuples reads back as it was written:
    the frontier section's ``need[0.05]`` failed after a JSON round trip with string keys."""
    from benchmarks import record

    result = {
        "need": {0.05: {"exact": 3.0}, 0.02: {"batch": None}},
        "cells": {("zipf", 0.25): [1, 2], (1, (2, 3)): "x"},
        "rows": [{"T": 0.5, "N": 200}],
        "plain": {"a": 1},
    }
    out = tmp_path / "benchmarks.md"
    record.save(out, {"frontier": {"result": result, "seconds": 1.0, "run": {}}})
    back = record.load(out)["frontier"]["result"]
    assert back == result
    assert list(back["need"]) == [0.05, 0.02]
