"""Per-problem random streams: ``generator=`` a sequence of B generators (or seeds) in batched
mode, so that problem b's result depends on its own stream only, never on its batch-mates.

:class:`RowGenerators` holds one ``torch.Generator`` per problem. The core's own randomness (the
per-problem permutation of each call's draws, the batch rule's Gumbel noise) is drawn row by row
from it, and a batched ``draw`` that accepts ``generator=`` receives the list of the generators
of the rows it draws for (``draw(m, generator=[g_1, ..., g_B])``), which it must honour the same
way: row b's samples from ``g_b`` alone (the CALM adapter does, see
:func:`implicit_temperature.adapters.calm.adapter.sample_chunks`).

Why a Python loop over the B generators: a ``torch.Generator`` is one stream, and torch has no
call that fills row b of a tensor from generator b. The loop is over problems (B is at most a
server's batch limit), never over samples: each iteration draws a whole row with one call.

Which methods: all of them.

* ``method="batch"`` with a given num_samples. Its cost per problem is fixed (N draws per
  output), so every call draws the same number for every problem and nothing is decided across
  rows.
* ``method="exact"`` where no pilot plans it (a given ``plan``, or plan="auto" at T >= 0.5,
  the flat round). Every quantity that shapes row b's draws is a function of row b's own state:
  its lane count (rounded up to a power of two so that rows with similar needs share a call;
  :func:`~.exact.lane_width`), its budget (``max_draws`` bounds each problem's own draws,
  counted in ``DrawSource.row_draws``), the leaf rates that size a tree's requests (each row's
  own tallies), its factory coins (:meth:`RowGenerators.ragged_uniform`). Rows with different
  counts are drawn by one call per distinct count for just those rows
  (:meth:`~.drawing.DrawSource.ragged`): a row's stream moves by its own count only, never by
  a batch-mate's. A ``draw`` without ``active=`` is called for every row, the rows left out
  with a throwaway generator, so their streams stay untouched.
* ``method="auto"``, ``num_samples="auto"`` and the pilot of plan="auto" below T = 0.5: with
  one stream it plans from the whole batch; with one per problem each problem plans from its
  own pilot, as a single-problem call would (:mod:`.row_plans`: its pilot's growth, its
  decision, its batch plan's growth and re-plan, ``max_draws`` per problem), and the problems
  that chose the same plan run together (:mod:`.row_runs`). The result then merges them:
  ``method`` is "mixed" where problems chose differently (``res.extra["methods"]`` per
  problem).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

import torch

from .errors import InvalidArgumentError
from .validation import make_generator


def is_row_generators(
    generator: Any,
) -> TypeGuard[Sequence[torch.Generator | int] | RowGenerators]:
    """True for ``generator=`` given as a list or tuple (one generator or seed per problem)."""
    return isinstance(generator, (list, tuple, RowGenerators))


class RowGenerators:
    """One ``torch.Generator`` per problem (see the module docstring). ``device``: the first
    generator's (all must share it)."""

    generators: list[torch.Generator]
    device: torch.device

    def __init__(self, generators: Sequence[torch.Generator | int] | RowGenerators) -> None:
        given = generators.generators if isinstance(generators, RowGenerators) else generators
        if len(given) == 0:
            raise InvalidArgumentError("generator is an empty list: give one per problem")
        gens: list[torch.Generator] = [make_generator(g) for g in given]
        if len({id(g) for g in gens}) != len(gens):
            raise InvalidArgumentError(
                "generator lists the same torch.Generator for several problems: give each "
                "problem its own (one stream per row is what makes rows independent)"
            )
        devices = {g.device for g in gens}
        if len(devices) > 1:
            raise InvalidArgumentError(
                f"the per-problem generators live on several devices {sorted(map(str, devices))}"
            )
        self.generators = gens
        self.device = gens[0].device

    def __len__(self) -> int:
        return len(self.generators)

    def subset(self, rows: torch.Tensor | None) -> list[torch.Generator]:
        """The generators of ``rows`` (a bool mask (B,) or indices; None: all), in order."""
        if rows is None:
            return list(self.generators)
        if rows.dtype == torch.bool:
            rows = rows.nonzero().flatten()
        return [self.generators[i] for i in rows.cpu().tolist()]

    def select(self, mask: torch.Tensor) -> RowGenerators:
        """The generators of the rows where ``mask`` (bool (B,)) is True, as RowGenerators."""
        out = RowGenerators.__new__(RowGenerators)
        out.generators, out.device = self.subset(mask), self.device
        return out

    def uniform(
        self,
        shape: tuple[int, ...],
        device: torch.device,
        dtype: torch.dtype = torch.float64,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Uniform(0, 1) numbers ``shape = (B', ...)`` on ``device``, row i from the generator of
        the i-th of ``rows`` (None: all B rows, B' = B): one ``torch.rand`` call per row."""
        gens = self.subset(rows)
        if shape[0] != len(gens):
            raise InvalidArgumentError(
                f"{shape[0]} rows of uniforms asked for {len(gens)} per-problem generators"
            )
        u = torch.stack(
            [torch.rand(shape[1:], generator=g, device=g.device, dtype=dtype) for g in gens]
        )
        return u.to(device, non_blocking=True)

    def ragged_uniform(
        self, counts: torch.Tensor, width: int, device: torch.device
    ) -> torch.Tensor:
        """Uniforms (B, width) float64 on ``device``: row b's first ``counts[b]`` (host LongTensor)
        from its own generator (one ``torch.rand`` call per row with a nonzero count), the rest
        1.0; a row with count 0 leaves its stream untouched."""
        out = torch.ones((len(self.generators), width), dtype=torch.float64)
        for b, (g, c) in enumerate(zip(self.generators, counts.tolist(), strict=True)):
            if c > 0:
                u = torch.rand((int(c),), generator=g, device=g.device, dtype=torch.float64)
                out[b, : int(c)] = u.cpu()
        return out.to(device, non_blocking=True)

    def check_rows(self, num_problems: int) -> None:
        """InvalidArgumentError unless there is one generator per problem."""
        if num_problems != len(self.generators):
            raise InvalidArgumentError(
                f"generator is a list of {len(self.generators)}, but draw returned "
                f"{num_problems} problems: give one generator (or int seed) per problem"
            )
