"""Recognise diffusers pipelines and flow-matching schedulers without importing diffusers.

If diffusers was never imported, no object can be a diffusers pipeline, so adapters' ``handles``
stays cheap (plugin loading does not pull in diffusers).
"""

from __future__ import annotations

import sys
from typing import Any


def is_diffusion_pipeline(model: Any) -> bool:
    """True when ``model`` is a ``diffusers.DiffusionPipeline`` instance."""
    diffusers = sys.modules.get("diffusers")
    if diffusers is None:
        return False
    return isinstance(model, diffusers.DiffusionPipeline)


def is_flow_matching_scheduler(scheduler: Any) -> bool:
    """True for diffusers' flow-matching schedulers (``FlowMatchEulerDiscreteScheduler``,
    ``FlowMatchHeunDiscreteScheduler``, ``FlowMatchLCMScheduler``, ...) and any scheduler class
    whose name starts with ``FlowMatch`` (the diffusers naming rule, also for subclasses)."""
    return any(cls.__name__.startswith("FlowMatch") for cls in type(scheduler).__mro__)


def is_flow_matching_pipeline(model: Any) -> bool:
    """A diffusers pipeline whose ``scheduler`` is a flow-matching scheduler."""
    return is_diffusion_pipeline(model) and is_flow_matching_scheduler(
        getattr(model, "scheduler", None)
    )
