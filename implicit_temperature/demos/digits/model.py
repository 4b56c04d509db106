"""The digits DDPM: its architecture, scheduler, training class mix, and offline loading.

The shipped pipeline (``pipeline/``, trained by ``scripts/train_digits.py``) is a standard
``diffusers.DDPMPipeline``: a ``UNet2DModel`` on 1x8x8 images (channels 16/32, no attention,
~0.1 M parameters) and a ``DDIMScheduler`` (1000 training steps, cosine betas). It was trained
on scikit-learn's 8x8 digits resampled to the imbalanced class mix :data:`DIGIT_MIX`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

#: Class mix of the training set: 0: 35 %, 1: 25 %, 2: 15 %, 3: 10 %, 4..9: 2.5 % each.
DIGIT_MIX: tuple[float, ...] = (0.35, 0.25, 0.15, 0.10) + (0.025,) * 6

#: Folder of the shipped pipeline (``save_pretrained`` output).
PIPELINE_PATH = Path(__file__).resolve().parent / "pipeline"

#: Inference steps of the demo and the benchmarks (DDIM, deterministic steps; the tests use 5).
DEFAULT_INFERENCE_STEPS = 10


def build_unet() -> Any:
    """The untrained ``UNet2DModel`` of the digits DDPM (explicit config, no defaults relied on)."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        add_attention=False,
    )


def build_scheduler() -> Any:
    """The sampling scheduler saved with the pipeline: DDIM over the training betas."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )


def load_digits_pipeline(device: str | torch.device | None = None) -> Any:
    """The shipped digits ``DDPMPipeline``, loaded offline from the package's files.

    ``pipe(batch_size=n, num_inference_steps=10, generator=g, output_type="np").images`` is
    ``(n, 8, 8, 1)`` float32 in [0, 1] (``DDPMPipeline`` returns numpy for any output_type but
    "pil"). Pass ``num_inference_steps``: the pipeline's default is 1000 steps.
    """
    from diffusers import DDPMPipeline

    from ..mixture.loading import load_pipeline

    if not (PIPELINE_PATH / "model_index.json").is_file():
        raise FileNotFoundError(
            f"the digits pipeline is missing from {PIPELINE_PATH}; reinstall "
            "implicit-temperature, or retrain it with `python scripts/train_digits.py`"
        )
    return load_pipeline(DDPMPipeline, PIPELINE_PATH, device, None)


@torch.no_grad()
def sample_digits(
    pipe: Any,
    n: int,
    *,
    num_inference_steps: int = DEFAULT_INFERENCE_STEPS,
    generator: torch.Generator | None = None,
    noise_scale: float = 1.0,
) -> torch.Tensor:
    """``n`` images ``(n, 1, 8, 8)`` in [0, 1] from the digits pipeline, with the initial noise
    multiplied by ``noise_scale`` (the "noise temperature" baseline: latents ~ N(0, s^2 I)).

    With ``noise_scale=1`` this is the pipeline's own sampling loop (``DDPMPipeline.__call__``:
    Gaussian start, scheduler steps, ``(x / 2 + 0.5).clamp(0, 1)``), written out because
    ``DDPMPipeline`` takes no ``latents=``.
    """
    from diffusers.utils.torch_utils import randn_tensor

    unet, scheduler = pipe.unet, pipe.scheduler
    shape = (n, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    x = noise_scale * randn_tensor(shape, generator=generator, device=pipe.device, dtype=unet.dtype)
    scheduler.set_timesteps(num_inference_steps)
    for t in scheduler.timesteps:
        x = scheduler.step(unet(x, t).sample, t, x, generator=generator).prev_sample
    return (x / 2 + 0.5).clamp(0, 1)
