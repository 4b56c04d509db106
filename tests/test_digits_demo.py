"""The shipped digits demo: offline loading as a standard pipeline, the classifier's recorded
accuracy, the diffusers-native wrapper on it, and ``itemp demo digits`` (table and figures)."""

from __future__ import annotations

import argparse

import pytest
import torch

pytest.importorskip("diffusers")

from implicit_temperature.demos.digits import (  # noqa: E402
    DIGIT_MIX,
    held_out_accuracy,
    load_classifier,
)
from implicit_temperature.demos.digits.model import PIPELINE_PATH  # noqa: E402


def test_pipeline_loads_offline_as_a_standard_ddpm_pipeline():
    from diffusers import DDIMScheduler, DDPMPipeline, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(PIPELINE_PATH), local_files_only=True)
    assert type(pipe) is DDPMPipeline and isinstance(pipe.scheduler, DDIMScheduler)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=2, num_inference_steps=2, generator=torch.manual_seed(0)).images
    assert len(images) == 2 and images[0].size == (8, 8)
    size = sum(f.stat().st_size for f in PIPELINE_PATH.rglob("*") if f.is_file())
    assert size < 2_000_000  # a few MB at most
    assert abs(sum(DIGIT_MIX) - 1) < 1e-12


def test_classifier_labels_and_recorded_accuracy():
    classify = load_classifier()
    assert held_out_accuracy() >= 0.95
    x = torch.zeros(3, 1, 8, 8)
    labels = classify(x)
    assert labels.dtype == torch.long and labels.shape == (3,)
    assert torch.equal(classify(x.expand(3, 3, 8, 8)), labels)  # colour averaged to grey
    assert classify.probabilities(x).shape == (3, 10)


def test_wrapper_on_the_digits_pipeline_returns_pil_digits():
    from diffusers import ImagePipelineOutput

    from implicit_temperature.adapters.diffusion import with_temperature
    from implicit_temperature.demos.digits import load_digits_pipeline

    tpipe = with_temperature(
        load_digits_pipeline(),
        quantizer="classifier",
        quantizer_options={"fn": load_classifier()},
        num_inference_steps=3,
    )
    out = tpipe(temperature=0.5, num_images_per_prompt=4, generator=torch.manual_seed(0))
    assert type(out) is ImagePipelineOutput
    assert len(out.images) == 4 and all(im.mode == "L" for im in out.images)
    assert tpipe.last_results[0].diagnostics.key_name == "classifier"


def _args(extra):
    from implicit_temperature.demos.digits import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return demo, parser.parse_args(extra)


def test_cli_digits_demo_prints_the_table_and_writes_both_figures(tmp_path, capsys):
    from implicit_temperature import cli

    assert cli.DEMOS["digits"] == "implicit_temperature.demos.digits.demo"
    out = tmp_path / "digits.png"
    demo, args = _args(
        [
            "--temperatures",
            "0.5",
            "2",
            "--num-outputs",
            "12",
            "--num-samples",
            "8",
            "--law-samples",
            "200",
            "--steps",
            "2",
            "--out",
            str(out),
        ]
    )
    assert demo.run(args) == 0
    text = capsys.readouterr().out
    for word in (
        "class law P at T = 1",
        "target P^(1/T)/Z",
        "exact",
        "batch N=8",
        "noise x0.5",
        "T = 2",
        f"figure written to {out}",
        f"figure written to {tmp_path / 'digits-grids.png'}",
    ):
        assert word in text, word
    assert out.stat().st_size > 10_000 and (tmp_path / "digits-grids.png").stat().st_size > 10_000
    # a second run with the same --out refuses before computing anything
    assert demo.run(args) == 2
    assert "--force" in capsys.readouterr().out
