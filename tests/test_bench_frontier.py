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
