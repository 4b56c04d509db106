"""The shipped digit classifier: a small CNN on 8x8 grayscale digits, for the ``classifier``
quantizer ("the same outcome" = "the same digit").

Trained by ``scripts/train_digits.py`` on scikit-learn's 8x8 digits (train split); its held-out
accuracy is stored in ``classifier.json`` next to the weights.

    from implicit_temperature.demos.digits import load_classifier
    classify = load_classifier()
    sampler = TemperatureSampler(pipe, quantizer="classifier",
                                 quantizer_options={"fn": classify})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import InvalidArgumentError

CLASSIFIER_PATH = Path(__file__).resolve().parent / "classifier.safetensors"
CLASSIFIER_CONFIG_PATH = Path(__file__).resolve().parent / "classifier.json"


class DigitClassifier(nn.Module):
    """CNN: images ``(n, C, 8, 8)`` / ``(n, 8, 8)`` float in [0, 1] -> logits ``(n, 10)``.

    Colour images are averaged over channels; images of another size are area-resized to 8x8.
    Calling the module gives logits; :meth:`labels` gives the digit (LongTensor ``(n,)``), the
    deterministic key the ``classifier`` quantizer needs; :meth:`probabilities` the softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    @staticmethod
    def _prepare(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4:
            raise InvalidArgumentError(
                f"the digit classifier takes images (n, C, H, W) or (n, H, W), got {tuple(x.shape)}"
            )
        x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (8, 8):
            x = F.adaptive_avg_pool2d(x, 8)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x).to(self.fc2.weight.device)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))

    @torch.no_grad()
    def labels(self, x: Any) -> torch.Tensor:
        """The predicted digit per image, LongTensor ``(n,)`` on the images' device."""
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
        return self(x).argmax(-1).to(device)

    @torch.no_grad()
    def probabilities(self, x: Any) -> torch.Tensor:
        return self(x).softmax(-1)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))


class DigitLabeler:
    """``labeler(images) -> LongTensor (n,)``: the classifier's digit, for the quantizer."""

    def __init__(self, model: DigitClassifier) -> None:
        self.model = model

    def __call__(self, images: Any) -> torch.Tensor:
        return self.model.labels(images)

    def probabilities(self, images: Any) -> torch.Tensor:
        return self.model.probabilities(images)

    def __repr__(self) -> str:
        return "DigitLabeler(shipped 8x8 digit CNN)"


def load_classifier(device: str | torch.device | None = None) -> DigitLabeler:
    """The shipped classifier as a labeler ``images -> digits`` (LongTensor ``(n,)``).

    Pass it as ``quantizer_options={"fn": load_classifier()}`` with ``quantizer="classifier"``.
    """
    from safetensors.torch import load_file

    if not CLASSIFIER_PATH.is_file():
        raise FileNotFoundError(
            f"the digit classifier is missing from {CLASSIFIER_PATH}; reinstall "
            "implicit-temperature, or retrain it with `python scripts/train_digits.py`"
        )
    model = DigitClassifier()
    model.load_state_dict(load_file(str(CLASSIFIER_PATH)))
    model.eval()
    if device is not None:
        model.to(device)
    return DigitLabeler(model)


def held_out_accuracy() -> float | None:
    """The held-out accuracy recorded by the training script (None if not recorded)."""
    if not CLASSIFIER_CONFIG_PATH.is_file():
        return None
    return float(json.loads(CLASSIFIER_CONFIG_PATH.read_text())["held_out_accuracy"])
