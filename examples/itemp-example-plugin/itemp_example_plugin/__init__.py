"""Example third-party plugin for implicit-temperature: loaded dice.

``LoadedDie`` is the "model family" (a stand-in for your own model class), ``DiceAdapter`` tells
implicit-temperature how to draw from it and compare its samples, and ``plugin`` registers the
adapter through the entry point declared in pyproject.toml.
"""

from .adapter import DiceAdapter
from .model import LoadedDie

__all__ = ["DiceAdapter", "LoadedDie"]
