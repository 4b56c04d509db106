"""Smoke test of the frontier section: a small grid on the flat head runs, renders, and shows
what the section is for (the jackknife reaches TV <= 0.05 at T = 0.1 with far fewer draws than
the exact tree, and the batch rule at N = 200 is far off). Measures nothing about speed."""

from __future__ import annotations

import math

from benchmarks import bench_frontier, frontier_report


def test_frontier_section_runs_and_renders(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_frontier, "QUICK_LAWS", ("flat-head",))
    monkeypatch.setattr(bench_frontier, "TEMPERATURES", (0.1,))
    monkeypatch.setattr(bench_frontier, "QUICK_SIZES", (200, 800, 3200))
    monkeypatch.setattr(bench_frontier, "tree_overspend", lambda quick: None)
    res = bench_frontier.run(True)
    res.pop("tree")
    (row,) = res["rows"]
    assert all(0.0 <= p["tv"] <= 1.0 for pts in row["curves"].values() for p in pts)
    assert row["reference_tv"] > 0.15  # the N = 200 rule is far off here
    jack = row["need"][0.05]["jackknife"]
    assert math.isfinite(jack) and jack < row["exact"] / 10
    figs = frontier_report.frontier_figures(res, tmp_path)
    assert (tmp_path / figs["flat-head"].split("/")[-1]).stat().st_size > 0
    text = frontier_report.frontier_section(res, figs)
    assert "| flat-head | 1005 | 0.1 |" in text


def _row(law: str, t: float, exact: float, binomial: float, jackknife: float) -> dict:
    need = {"exact": exact, "binomial": binomial, "jackknife": jackknife, "hybrid": 10 * jackknife}
    pts = [{"draws": 100.0, "tv": 0.5}]
    return {
        "law": law,
        "K": 2000,
        "T": t,
        "exact": exact,
        "reference_tv": 0.3,
        "curves": {"binomial": pts, "jackknife": pts, "hybrid": pts},
        "need": {0.05: need, 0.02: need},
    }


def test_frontier_docs_block_is_computed_from_the_rows():
    """The algorithms page's block: spread laws only, ratios only where both methods reach the
    tolerance (a jackknife that never does is left out, not counted as a ratio of 0)."""
    res = {
        "quick": False,
        "seconds": 12.0,
        "shared_outputs": 400,
        "tolerances": [0.05, 0.02],
        "rows": [
            _row("dirichlet-2000 (0.1)", 0.25, 8000.0, 4000.0, 1000.0),
            _row("flat-head", 0.1, 40000.0, 2000.0, 500.0),
            _row("uniform-ish 1000", 0.1, 1e11, math.inf, math.inf),
            _row("peaked-4", 0.25, 30.0, 60.0, 30.0),
        ],
    }
    ((page, bodies),) = frontier_report.frontier_doc_blocks(res).items()
    assert page.name == "algorithms.md"
    text = bodies["frontier-summary"]
    assert "| dirichlet-2000 (0.1) | 0.25 |" in text and "| peaked-4 |" not in text
    assert "2.00 to 4.00 (median 4.00, 3 settings) times fewer draws than the plain" in text
    assert "8.00 to 80.0 (median 80.0, 2 settings) times fewer than the exact tree" in text
    assert frontier_report.frontier_doc_blocks({**res, "quick": True}) == {}
