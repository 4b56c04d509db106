"""Loading the shipped flow-matching demo pipeline offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..diffusion.demo_model import load_pipeline

#: Folder of the shipped flow-matching demo (``save_pretrained`` output), trained by
#: ``scripts/train_diffusion_demo.py``.
DEMO_PIPELINE_PATH = Path(__file__).resolve().parent / "demo_pipeline"


def load_demo_pipeline(device: str | torch.device | None = None,
                       torch_dtype: torch.dtype | None = None) -> Any:
    """The shipped flow-matching demo: a :class:`MixtureFlowMatchingPipeline` on the 2-D mixture.

    ``pipe.mixture_means`` (K, 2) and ``pipe.mixture_weights`` (K,) are the mixture it was
    trained on (weights 0.5 / 0.3 / 0.15 / 0.05); its scheduler is
    ``FlowMatchEulerDiscreteScheduler``. Loaded from the package's files, offline.
    """
    from .pipeline import MixtureFlowMatchingPipeline

    return load_pipeline(MixtureFlowMatchingPipeline, DEMO_PIPELINE_PATH, device, torch_dtype)
