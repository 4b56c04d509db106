"""Loading the shipped demo pipelines offline (``from_pretrained`` on a folder in the package)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

#: Folders of the shipped demo pipelines (``save_pretrained`` output: model_index.json, denoiser/,
#: scheduler/), trained by ``scripts/train_diffusion_demo.py``.
DDPM_PIPELINE_PATH = Path(__file__).resolve().parent / "weights" / "ddpm"
FLOW_PIPELINE_PATH = Path(__file__).resolve().parent / "weights" / "flow"


@contextlib.contextmanager
def quiet_diffusers() -> Iterator[None]:
    """Silence diffusers' loading chatter (accelerate hint, component progress bar)."""
    from diffusers.utils import logging

    level = logging.get_verbosity()
    bars_on = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars_on:
            logging.enable_progress_bar()


def load_pipeline(
    cls: Any, path: Path, device: str | torch.device | None, torch_dtype: torch.dtype | None
) -> Any:
    """``cls.from_pretrained(path)`` with no network access; clear error if files are missing."""
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"the demo pipeline is missing from {path}; reinstall implicit-temperature, or "
            "retrain it with `python scripts/train_diffusion_demo.py`"
        )
    with quiet_diffusers():
        kwargs = {"local_files_only": True}
        if torch_dtype is not None:
            kwargs["torch_dtype"] = torch_dtype
        pipe = cls.from_pretrained(str(path), **kwargs)
    if device is not None:
        pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_ddpm_pipeline(
    device: str | torch.device | None = None, torch_dtype: torch.dtype | None = None
) -> Any:
    """The shipped DDPM demo: a :class:`MixtureDDPMPipeline` on the 2-D mixture.

    ``pipe.mixture_means`` (K, 2) and ``pipe.mixture_weights`` (K,) are the mixture it was
    trained on (weights 0.5 / 0.3 / 0.15 / 0.05). ``pipe(batch_size, generator=g).samples`` is
    ``(batch_size, 2)``. Loaded from the package's files, offline.
    """
    from .ddpm_pipeline import MixtureDDPMPipeline

    return load_pipeline(MixtureDDPMPipeline, DDPM_PIPELINE_PATH, device, torch_dtype)


def load_flow_pipeline(
    device: str | torch.device | None = None, torch_dtype: torch.dtype | None = None
) -> Any:
    """The shipped flow-matching demo: a :class:`MixtureFlowMatchingPipeline` on the 2-D mixture.

    ``pipe.mixture_means`` (K, 2) and ``pipe.mixture_weights`` (K,) are the mixture it was
    trained on (weights 0.5 / 0.3 / 0.15 / 0.05); its scheduler is
    ``FlowMatchEulerDiscreteScheduler``. Loaded from the package's files, offline.
    """
    from .flow_pipeline import MixtureFlowMatchingPipeline

    return load_pipeline(MixtureFlowMatchingPipeline, FLOW_PIPELINE_PATH, device, torch_dtype)
