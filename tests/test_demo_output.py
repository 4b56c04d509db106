"""Demo outputs: --out is checked before any computation, an existing figure is never silently
overwritten, the path written is printed, matplotlib's global backend is left alone, and
--max-draws reaches the samplers."""

from __future__ import annotations

import argparse

import pytest

from implicit_temperature.demos.output import (
    FigurePathError,
    add_output_arguments,
    resolve_figure_paths,
)


def test_default_name_is_numbered_when_taken(tmp_path):
    default = str(tmp_path / "demo-x.png")
    assert resolve_figure_paths(None, default) == [tmp_path / "demo-x.png"]
    (tmp_path / "demo-x.png").write_bytes(b"old")
    assert resolve_figure_paths(None, default) == [tmp_path / "demo-x-1.png"]
    (tmp_path / "demo-x-1-grids.png").write_bytes(b"old")  # any of the set taken: next number
    assert resolve_figure_paths(None, default, suffixes=("", "-grids")) == [
        tmp_path / "demo-x-2.png",
        tmp_path / "demo-x-2-grids.png",
    ]
    assert resolve_figure_paths("", default) is None


def test_explicit_out_is_refused_when_it_exists_or_cannot_be_written(tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"old")
    with pytest.raises(FigurePathError, match="--force"):
        resolve_figure_paths(str(out), "unused.png")
    assert resolve_figure_paths(str(out), "unused.png", force=True) == [out]
    with pytest.raises(FigurePathError, match="does not exist"):
        resolve_figure_paths(str(tmp_path / "nope" / "fig.png"), "unused.png")
    with pytest.raises(FigurePathError, match=r"\.png"):
        resolve_figure_paths(str(tmp_path / "fig.txt"), "unused.png")
    assert out.read_bytes() == b"old"


def _mixture_args(extra):
    from implicit_temperature.demos.mixture.runner import add_common_arguments

    parser = argparse.ArgumentParser()
    add_common_arguments(parser, default_out="demo-diffusion.png")
    return parser.parse_args(extra)


def test_mixture_demo_checks_out_before_loading_the_model(tmp_path, capsys):
    from implicit_temperature.demos.mixture.runner import run_mixture_demo

    out = tmp_path / "fig.png"
    out.write_bytes(b"old")
    loaded = []
    rc = run_mixture_demo("t", lambda: loaded.append(1), _mixture_args(["--out", str(out)]))
    assert rc == 2 and loaded == [] and out.read_bytes() == b"old"
    assert "exist" in capsys.readouterr().out


def test_mixture_demo_prints_path_keeps_backend_and_honours_max_draws(tmp_path, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("diffusers")
    from implicit_temperature.demos.mixture import load_ddpm_pipeline
    from implicit_temperature.demos.mixture.runner import run_mixture_demo

    before = matplotlib.get_backend()
    out = tmp_path / "fig.png"
    args = _mixture_args(
        ["--num-outputs", "50", "--num-samples", "10", "--out", str(out), "--max-draws", "20"]
    )
    assert run_mixture_demo("t", load_ddpm_pipeline, args) == 0
    text = capsys.readouterr().out
    assert f"figure written to {out}" in text and out.stat().st_size > 10_000
    assert "exact: stopped by --max-draws 20" in text  # 50 outputs need more than 20 draws
    assert matplotlib.get_backend() == before


def test_categorical_demo_max_draws(capsys):
    from implicit_temperature.demos import categorical

    parser = argparse.ArgumentParser()
    categorical.add_arguments(parser)
    args = parser.parse_args(["--temperatures", "0.5", "--num-outputs", "100", "--max-draws", "50"])
    assert categorical.run(args) == 0
    text = capsys.readouterr().out
    assert "T = 0.5, exact: stopped by --max-draws 50" in text
    assert "batch" in text


def test_output_arguments():
    parser = argparse.ArgumentParser()
    add_output_arguments(parser, "demo-y.png")
    args = parser.parse_args([])
    assert args.out is None and args.default_out == "demo-y.png" and not args.force
    assert args.max_draws is None
