"""The adapter base class: how one model family's samples are drawn and compared."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch

from ..core.errors import InvalidArgumentTypeError
from .hookspecs import adapter_contract


class Adapter:
    """Base class (and protocol) for model adapters.

    Subclass it (or follow its protocol) and register the class with the ``register_adapters``
    hook. The contract, written once in that hook's docstring, follows.
    """

    name: ClassVar[str] = ""
    batched: bool = False

    def __init__(self, model: Any, **options: Any) -> None:
        if options:
            raise InvalidArgumentTypeError(
                f"adapter {self.name!r} takes no options, got {sorted(options)}; "
                "check the adapter's documentation for the options it accepts"
            )
        self.model = model

    @classmethod
    def handles(cls, model: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError(f"{cls.__name__}.handles(model) must be implemented")

    @property
    def num_problems(self) -> int | None:
        """B, the number of independent problems a batched adapter runs at once (else None)."""
        return None

    def draw(self, n: int, generator: torch.Generator | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError(
            f"{type(self).__name__}.draw(n, generator=None) must be implemented"
        )

    def quantize(self, samples: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.quantize(samples) must be implemented")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} adapter {self.name!r} for {type(self.model).__name__}>"


# The contract is written once, in the hookspec's docstring; help(Adapter) shows it here too.
Adapter.__doc__ = (
    f"{inspect.cleandoc(Adapter.__doc__ or '')}\n\nContract:\n\n{adapter_contract()}\n"
)
