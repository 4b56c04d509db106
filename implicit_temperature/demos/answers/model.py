"""The shipped answers model (a small CALM trained by ``scripts/train_answers.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..calm.modeling import CALM
from ..calm.tokenizer import CharTokenizer
from . import task

MODEL_DIR = Path(__file__).resolve().parent
MODEL_NAME = "answers_model"


def load_answers_model() -> tuple[CALM, CharTokenizer]:
    """The shipped answers model (eval mode, CPU, local safetensors; no network) and its character
    tokenizer. Prompts are questions ``"a+b="`` (:func:`task.question`)."""
    return CALM.from_pretrained(MODEL_DIR, name=MODEL_NAME), task.tokenizer()


def answers_model_record() -> dict[str, Any]:
    """The training record stored next to the weights (time, settings, evaluation)."""
    return json.loads((MODEL_DIR / f"{MODEL_NAME}.json").read_text())
