"""Shared fixtures: known categorical laws and their tempered targets."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
from scipy import stats

# the one law-helpers module of the demos, benchmarks and tests, re-exported for the test files
from benchmarks.launch import free_port, torchrun_command  # noqa: F401
from implicit_temperature.demos.laws import frequencies, tempered, total_variation  # noqa: F401

# Significance level of every goodness-of-fit test in the suite. Seeds are fixed, so a test either
# always passes or always fails; alpha says how unlikely a correct sampler is to fail it.
ALPHA = 1e-3

PEAKED = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
ZIPF = torch.arange(1, 31, dtype=torch.float64) ** -1.1
ZIPF = ZIPF / ZIPF.sum()


def categorical_draw(p: torch.Tensor):
    """draw(m, generator) -> LongTensor (m,) of outcome ids ~ p."""

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(p.float(), m, replacement=True, generator=generator)

    return draw


def chi_square_pvalue(outcomes: torch.Tensor, target: torch.Tensor, min_expected: float = 5.0):
    """Pearson chi-square p-value of observed outcome ids against target probabilities.

    Cells with expected count < min_expected are pooled into one cell (the usual validity rule);
    a pooled cell still below min_expected joins the smallest frequent cell, or, when only one
    frequent cell is left, the exact binomial test of the pooled count is used instead.
    """
    n = outcomes.numel()
    observed = torch.bincount(outcomes.flatten(), minlength=target.numel()).double().numpy()
    expected = target.double().numpy() * n
    impossible = expected == 0
    assert observed[impossible].sum() == 0, "an outcome of target probability 0 was returned"
    observed, expected = observed[~impossible], expected[~impossible]
    big = expected >= min_expected
    assert observed.sum() == n, "an outcome outside the target's support was returned"
    obs = list(observed[big])
    exp = list(expected[big])
    if (~big).any():
        small_obs, small_exp = observed[~big].sum(), expected[~big].sum()
        if small_exp < min_expected and len(exp) == 1:
            # one frequent cell and a pooled rest still too rare for the chi-square
            # approximation: the exact binomial test of the rest's count
            return stats.binomtest(int(small_obs), n, small_exp / n).pvalue
        if small_exp < min_expected:  # fold the rare rest into the smallest frequent cell
            i = int(np.argmin(exp))
            obs[i] += small_obs
            exp[i] += small_exp
        else:
            obs.append(small_obs)
            exp.append(small_exp)
    obs, exp = np.array(obs), np.array(exp)
    return stats.chisquare(obs, exp).pvalue


@pytest.fixture
def peaked():
    return PEAKED


@pytest.fixture
def zipf():
    return ZIPF


def tiny_calm_config(**kw):
    """A CALMConfig of the demo CALM's structure, sized for fast tests (random weights)."""
    from implicit_temperature.demos.calm import CALMConfig

    base = dict(
        vocab_size=30,
        patch_size=4,
        latent_size=4,
        ae_embed_size=8,
        ae_hidden_size=16,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        intermediate_size=32,
        noise_size=4,
        head_hidden_size=16,
        head_num_blocks=1,
    )
    base.update(kw)
    return CALMConfig(**base)


def tiny_unet():
    """A random 1 x 8 x 8 diffusers ``UNet2DModel`` (channels 8/16, no attention), seeded 0: the
    smallest UNet the pipeline tests run (needs diffusers)."""
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
        norm_num_groups=4,
        add_attention=False,
    )


def default_sigint() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C: a runner that starts the suite in the
    background of a non-interactive shell passes SIGINT on ignored, and Python then keeps
    ignoring it; the tests are about what the CLI does with Ctrl-C, so the child gets the
    default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
