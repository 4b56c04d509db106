"""Turn whatever a diffusers pipeline returns into one tensor of samples ``(n, ...)``.

Pipelines return an output dataclass (``ImagePipelineOutput(images=...)``, ...), a tuple (with
``return_dict=False``) or a bare value; the samples inside are PIL images, numpy arrays or torch
tensors depending on ``output_type``. :func:`samples_to_tensor` gives one layout for all of them:

* torch tensors are returned as they are (device and dtype kept);
* numpy arrays become tensors; 4-D float arrays (diffusers' ``output_type="np"`` images,
  channels-last ``(n, H, W, C)``) are permuted to channels-first ``(n, C, H, W)``, the layout of
  ``output_type="pt"``;
* lists of PIL images become float32 ``(n, C, H, W)`` in [0, 1] (the scale of "np"/"pt" output).

So an image pipeline yields the same ``(n, C, H, W)`` tensor whichever ``output_type`` it used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...core import SamplerOutputError


def _first_field(output: Any) -> Any:
    """The samples inside a pipeline output: first field of a dataclass/dict, or tuple[0]."""
    if isinstance(output, dict):  # diffusers BaseOutput is an OrderedDict subclass
        values = [v for v in output.values() if v is not None]
        if not values:
            raise SamplerOutputError("the pipeline returned an output with no fields set")
        return values[0]
    if isinstance(output, tuple):
        if not output:
            raise SamplerOutputError("the pipeline returned an empty tuple")
        return output[0]
    return output


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _pil_to_tensor(images: list) -> torch.Tensor:
    arrays = [np.asarray(im) for im in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise SamplerOutputError(f"the pipeline returned PIL images of different sizes {shapes}")
    stack = np.stack(arrays)
    if stack.ndim == 3:  # mode "L": (n, H, W) -> (n, H, W, 1)
        stack = stack[..., None]
    scale = 255.0 if stack.dtype == np.uint8 else 1.0
    t = torch.from_numpy(stack.astype(np.float32) / scale)
    return t.permute(0, 3, 1, 2).contiguous()


def samples_to_tensor(output: Any, expected: int) -> torch.Tensor:
    """The ``expected`` samples of one pipeline call as a tensor ``(expected, ...)``.

    Raises :class:`SamplerOutputError` for an unknown output type, a wrong number of samples, or
    NaN values (with the usual causes and fixes).
    """
    value = _first_field(output)
    if isinstance(value, torch.Tensor):
        samples = value
    elif isinstance(value, np.ndarray):
        samples = torch.from_numpy(np.ascontiguousarray(value))
        if samples.ndim == 4 and samples.is_floating_point():
            samples = samples.permute(0, 3, 1, 2).contiguous()
    elif isinstance(value, (list, tuple)) and value and all(_is_pil(v) for v in value):
        samples = _pil_to_tensor(list(value))
    elif (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in value)
    ):
        samples = torch.stack([torch.as_tensor(v) for v in value])
    else:
        raise SamplerOutputError(
            f"cannot read samples from a pipeline output of type {type(value).__name__}; the "
            "diffusion adapter understands tensors, numpy arrays and lists of PIL images. Pass "
            "output_type='pt' or 'np' in pipeline_kwargs, or wrap the pipeline in a callable "
            "draw(n) and use temperature_sample directly"
        )
    if samples.ndim == 0 or samples.shape[0] != expected:
        raise SamplerOutputError(
            f"the pipeline returned {tuple(samples.shape)} for {expected} requested samples; "
            "the adapter asks for them with batch_size= (unconditional pipelines) or "
            "num_images_per_prompt= (with a prompt). Check that the pipeline honours that "
            "argument, or pass the right one through pipeline_kwargs"
        )
    if samples.is_floating_point() and bool(torch.isnan(samples).any()):
        bad = int(torch.isnan(samples.reshape(expected, -1)).any(dim=1).sum())
        raise SamplerOutputError(
            f"the pipeline returned NaN in {bad} of {expected} samples. Usual causes: float16 "
            "weights on CPU (load with torch_dtype=torch.float32), too few or too many "
            "num_inference_steps for the scheduler, or diverged weights. NaN samples cannot be "
            "compared, so no temperature can be applied to them"
        )
    return samples
