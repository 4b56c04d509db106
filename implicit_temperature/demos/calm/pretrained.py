"""The demo CALM model shipped with the package (trained by ``scripts/train_calm.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .modeling import CALM
from .tokenizer import CharTokenizer

DEMO_MODEL_DIR = Path(__file__).resolve().parent
DEMO_MODEL_NAME = "demo_model"

#: Prompts of the demo grammar (each a whole number of 4-character chunks).
DEMO_PROMPTS: tuple[str, ...] = ("cat ", "dog saw ", "owl met elk.")


def load_demo_model() -> tuple[CALM, CharTokenizer]:
    """The shipped demo model (eval mode, CPU, loaded from the package's safetensors file; no
    network) and its character tokenizer. Returns ``(model, tokenizer)``."""
    model = CALM.from_pretrained(DEMO_MODEL_DIR, name=DEMO_MODEL_NAME)
    return model, CharTokenizer()


def demo_model_record() -> dict[str, Any]:
    """The training record stored next to the demo weights (time, settings, evaluation)."""
    return json.loads((DEMO_MODEL_DIR / f"{DEMO_MODEL_NAME}.json").read_text())
