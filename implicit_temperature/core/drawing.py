"""Calling the user's ``draw`` and checking what comes back."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from .errors import InvalidArgumentTypeError, SamplerOutputError
from .keys import KeyFunction
from .rows import RowGenerators
from .samples import Samples, cat_samples, wrap_draw_output


def accepts_generator(draw: Callable[..., Any]) -> bool:
    """True when ``draw`` takes a ``generator`` keyword (or **kwargs)."""
    return _accepts(draw, "generator", var_keyword=True)


def warn_if_seed_ignored(draw: Callable[..., Any], generator: Any) -> None:
    """:class:`~.errors.IgnoredSeedWarning` when a seed or generator was given but ``draw`` has
    no ``generator`` parameter to receive it: its samples then come from the global RNG, so the
    result is not reproducible from that seed."""
    if generator is None or accepts_generator(draw):
        return
    import warnings

    from .errors import IgnoredSeedWarning

    name = getattr(draw, "__qualname__", type(draw).__name__)
    warnings.warn(
        f"generator={generator!r} was given, but draw ({name}) takes no generator parameter, so "
        "the seed cannot reach it: its samples come from the global random state and are not "
        "reproducible from this seed. Give draw a generator=None parameter and draw with it "
        "(e.g. torch.randint(..., generator=generator))",
        IgnoredSeedWarning,
        stacklevel=3,
    )


def accepts_active(draw: Callable[..., Any]) -> bool:
    """True when ``draw`` declares an ``active`` keyword (batched draws of some problems only)."""
    return _accepts(draw, "active", var_keyword=False)


def _accepts(fn: Callable[..., Any], name: str, *, var_keyword: bool) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == name or (var_keyword and p.kind is inspect.Parameter.VAR_KEYWORD) for p in params
    )


#: draws per problem that a run keeps (its first ones) for :class:`~.diagnostics.Diagnostics`.
DIAGNOSTIC_DRAWS = 256


class DrawSource:
    """``draw`` plus its key function, counting base draws and model calls.

    ``source(m)`` returns ``(samples, keys)``: :class:`Samples` (B, m, ...) and int64 keys
    (B, m, d). ``draws`` counts B * m per call (what the model produced).

    Batched draws may declare a keyword ``active``: ``draw(m, active=mask)`` with a bool tensor
    mask (B,) must return samples (B_active, m, ...) for the rows where mask is True, in order.
    ``source(m, active=mask)`` then fills the other rows with placeholders (never used by the
    caller) and counts B_active * m draws. Draws without it are always called for all B.

    Order: every call's draws are put in a uniformly random order per problem (a permutation
    drawn from ``generator``) before anything uses them. A uniformly permuted i.i.d. set is an
    i.i.d. sequence, so a ``draw`` that returns its samples sorted or grouped (e.g. by mixture
    component, as ``sklearn.mixture.GaussianMixture.sample`` does) still gives exact results.

    Consistency: the container type, dtype and per-sample shape must stay the same across calls
    (:class:`SamplerOutputError` otherwise): mixing e.g. float32 and int64 samples would make
    equal outcomes compare unequal.

    ``seen_keys()`` returns the keys of the run's first draws (at least ``DIAGNOSTIC_DRAWS`` per
    problem where the run drew that many; calls that drew for some problems only are left out),
    for diagnostics.

    Per-row generators (:class:`~.rows.RowGenerators`): ``row_draws`` (host LongTensor (B,))
    counts each problem's own draws, for per-row budgets. A ``draw`` without ``active=`` is still
    called for every row when ``active`` is given, but the rows left out receive a throwaway
    generator (their own stream is not consumed) and their samples are placeholders, so a row's
    stream only moves when the row itself is drawn for. :meth:`ragged` draws a different count
    per row (one call per distinct count).
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        key: Callable[[Any], Any] | None,
        *,
        batched: bool,
        generator: torch.Generator | RowGenerators,
    ) -> None:
        if not callable(draw):
            raise InvalidArgumentTypeError(
                f"draw must be a callable draw(m) -> m samples, got {type(draw).__name__}"
            )
        self.draw = draw
        self.keys = KeyFunction(key, batched)
        self.batched = batched
        self.generator = generator
        self._pass_generator = accepts_generator(draw)
        self.accepts_active = batched and accepts_active(draw)
        self.num_problems: int | None = None if batched else 1
        self.draws = 0
        self.calls = 0
        self._seen: list[torch.Tensor] = []
        self._seen_count = 0
        self._signature: tuple[Any, ...] | None = None
        self.row_draws: torch.Tensor | None = None
        self._buffer: tuple[Samples, torch.Tensor] | None = None
        if isinstance(generator, RowGenerators):
            self.row_draws = torch.zeros(len(generator), dtype=torch.long)

    @property
    def per_row(self) -> bool:
        """True with one generator per problem (see :mod:`.rows`)."""
        return isinstance(self.generator, RowGenerators)

    @property
    def by_row(self) -> bool:
        """True when a call can leave rows out (``active=``): ``draw`` takes it, or per-row
        generators keep the rows left out untouched (throwaway streams)."""
        return self.accepts_active or (self.batched and self.per_row)

    def single_generator(self) -> torch.Generator:
        """The run's one generator, for the code that plans from the whole batch (auto with one
        stream; with one per problem ``temperature_sample`` runs :mod:`.row_runs` instead)."""
        if isinstance(self.generator, RowGenerators):
            raise InvalidArgumentTypeError(
                "this step takes one generator, not one per problem (with a list, auto plans "
                "each problem from its own pilot in core.row_runs)"
            )
        return self.generator

    def _generator_kwargs(self, active: torch.Tensor | None) -> dict[str, Any]:
        """``generator=`` for ``draw``: the run's generator, or the list of the drawn rows'."""
        if not self._pass_generator:
            return {}
        g = self.generator
        if not isinstance(g, RowGenerators):
            return {"generator": g}
        if active is None or self.accepts_active:
            return {"generator": g.subset(active)}
        return {  # rows left out get a throwaway stream, made only for them
            "generator": [
                x if a else torch.Generator(device=g.device)
                for x, a in zip(g.generators, active.tolist(), strict=True)
            ]
        }

    @property
    def buffered_draws(self) -> int:
        """Draws made by :meth:`prefetch` (or given to :meth:`replay`) and not yet served (all
        problems)."""
        if self._buffer is None:
            return 0
        keys = self._buffer[1]
        return int(keys.shape[0] * keys.shape[1])

    def prefetch(self, m: int) -> None:
        """Draw m per problem now (one call, counted in ``draws`` and ``calls`` at once) and
        serve them first to the next calls for all problems (``source(m)`` without ``active=``),
        so that a run that will need them pays one model call instead of several. Draws
        served from it are as fresh as any: nothing looks at them before they are served. Not
        with per-row generators (a row's stream must move by its own requests only)."""
        if m <= 0 or self.per_row:
            return
        got = self._fresh(m, None)
        self._buffer = got if self._buffer is None else _joined(self._buffer, got)

    def replay(self, samples: Samples, keys: torch.Tensor) -> None:
        """Serve these draws (samples (B, m, ...), keys (B, m, d), already counted in
        ``draws``) first to the next calls for all problems, as :meth:`prefetch` does with its
        own; nothing is drawn or counted. Unlike prefetched draws they are not fresh where the
        caller looked at them: the one user is auto's batch plan for a pilot without repeats,
        whose pools are the pilot's own draws (:mod:`.pilot`)."""
        got = (samples, keys)
        self._buffer = got if self._buffer is None else _joined(got, self._buffer)

    def __call__(self, m: int, active: torch.Tensor | None = None) -> tuple[Samples, torch.Tensor]:
        if active is not None and not self.by_row:
            active = None
        if self._buffer is None or active is not None:
            return self._fresh(m, active)
        samples, keys = self._buffer
        take = min(m, keys.shape[1])
        head = (samples.gather(_positions(keys, 0, take)), keys[:, :take])
        rest = keys.shape[1] - take
        self._buffer = None
        if rest > 0:
            self._buffer = (samples.gather(_positions(keys, take, rest)), keys[:, take:])
        return head if take == m else _joined(head, self._fresh(m - take, None))

    def _fresh(self, m: int, active: torch.Tensor | None) -> tuple[Samples, torch.Tensor]:
        """m new draws from ``draw`` (for the rows of ``active``; None: all)."""
        kwargs = self._generator_kwargs(active)
        if active is None or not self.accepts_active:
            raw = self.draw(m, **kwargs)
            samples = wrap_draw_output(raw, m, self.batched, self.num_problems)
            if isinstance(self.generator, RowGenerators):
                self.generator.check_rows(samples.num_problems)
            self._check_signature(samples)
            self.num_problems = samples.num_problems
            keys = self.keys(raw, samples)
            drawn = samples.num_problems
            self._count_rows(m, active)
        else:
            rows = active.nonzero().flatten()  # a host sync, as every exact step has one anyway
            raw = self.draw(m, active=active, **kwargs)
            part = wrap_draw_output(raw, m, True, int(rows.numel()))
            self._check_signature(part)
            part_keys = self.keys(raw, part)
            b = self.num_problems or len(active)  # B: from earlier calls, or the row streams
            samples = part.scatter_rows(rows, b)
            keys = part_keys.new_zeros((b,) + tuple(part_keys.shape[1:]))
            keys[rows.to(keys.device)] = part_keys
            drawn = int(rows.numel())
            self.num_problems = b
            self._count_rows(m, active)
        samples, keys = self._shuffle(samples, keys, active)
        self.calls += 1
        self.draws += drawn * m
        if self._seen_count < DIAGNOSTIC_DRAWS and drawn == self.num_problems:
            self._seen.append(keys)
            self._seen_count += m
        return samples, keys

    def _count_rows(self, m: int, active: torch.Tensor | None) -> None:
        if self.row_draws is not None:
            self.row_draws += m if active is None else m * active.cpu().long()

    def ragged(self, counts: torch.Tensor) -> tuple[Samples, torch.Tensor]:
        """``counts[b]`` draws for row b (host LongTensor (B,), zeros allowed, not all zero):
        one call per distinct count, for the rows with that count (``active=``), so that each
        row draws exactly its own count. Returns samples (B, L, ...) and keys (B, L, d),
        L = max count; row b's entries beyond counts[b] (all of a row with count 0) are
        placeholders."""
        width = int(counts.max())
        parts: list[tuple[Samples, torch.Tensor]] = []
        which = torch.zeros(counts.shape[0], dtype=torch.long)
        for i, c in enumerate(sorted({int(x) for x in counts.tolist()} - {0})):
            mask = counts == c
            samples, keys = self(c, active=None if bool(mask.all()) else mask)
            pad = torch.arange(width).clamp(max=c - 1).expand(counts.shape[0], width)
            parts.append((samples.gather(pad), keys[:, pad[0].to(keys.device)]))
            which[mask] = i
        if len(parts) == 1:
            return parts[0]
        joined = cat_samples([p[0] for p in parts])
        keys = torch.cat([p[1] for p in parts], 1)
        index = which.unsqueeze(1) * width + torch.arange(width).unsqueeze(0)
        idx = index.to(keys.device)
        keys = keys.gather(1, idx.unsqueeze(-1).expand(-1, -1, keys.shape[2]))
        return joined.gather(index), keys

    def rows(self, index: torch.Tensor) -> DrawSource:
        """A source over the problems ``index`` (sorted LongTensor) of this one, for per-row
        generators: its calls draw for those rows only (``active=`` where ``draw`` takes it,
        else throwaway streams for the others), each from its own generator, so a row's stream
        moves as it would here. It shares the key function (and its interned objects), counts
        its own ``draws`` and ``calls``, and its ``row_draws`` start from these rows' draws so
        far (per-row budgets); :meth:`absorb` adds them back here."""
        gens = self.generator
        assert isinstance(gens, RowGenerators) and self.row_draws is not None
        idx = index.cpu()
        mask = torch.zeros(len(gens), dtype=torch.bool)
        mask[idx] = True
        view = DrawSource(_RowsDraw(self, idx), None, batched=True, generator=gens.select(mask))
        view.keys = self.keys
        view._signature = self._signature
        view.num_problems = int(idx.numel())
        view.row_draws = self.row_draws[idx].clone()
        return view

    def absorb(self, view: DrawSource, index: torch.Tensor) -> None:
        """Count the draws and calls of ``view`` (:meth:`rows` of ``index``) as this source's."""
        assert self.row_draws is not None and view.row_draws is not None
        self.draws += view.draws
        self.calls += view.calls
        self.row_draws[index.cpu()] = view.row_draws
        view.draws = view.calls = 0

    def _shuffle(
        self, samples: Samples, keys: torch.Tensor, active: torch.Tensor | None = None
    ) -> tuple[Samples, torch.Tensor]:
        """The draws of each problem in a uniformly random order (a permutation from the run's
        generator, or from each row's own with per-problem generators), so that nothing depends
        on the order ``draw`` returned them in."""
        b, m, d = keys.shape
        if m < 2:
            return samples, keys
        g = self.generator
        if isinstance(g, RowGenerators):  # each drawn row's permutation from its own stream
            if active is None:
                u = g.uniform((b, m), keys.device)
            else:  # rows not drawn for keep placeholders; their order is never used
                rows = active.nonzero().flatten().to(keys.device)
                u = torch.zeros((b, m), dtype=torch.float64, device=keys.device)
                u[rows] = g.uniform((int(rows.numel()), m), keys.device, rows=rows)
            perm = u.argsort(dim=1)
        elif b == 1:  # O(m)
            perm = torch.randperm(m, generator=g, device=g.device).unsqueeze(0)
        else:  # one uniformly random permutation per row (float64: ties have probability ~0)
            perm = torch.rand((b, m), generator=g, device=g.device, dtype=torch.float64)
            perm = perm.argsort(dim=1)
        perm_keys = perm.to(keys.device, non_blocking=True)
        keys = keys.gather(1, perm_keys.unsqueeze(-1).expand(b, m, d))
        return samples.gather(perm), keys

    def _check_signature(self, samples: Samples) -> None:
        """Same container, dtype and per-sample shape on every call, else SamplerOutputError."""
        data = samples.data
        if samples.kind == "list":
            sig: tuple[Any, ...] = ("list",)
        else:
            sig = (samples.kind, str(data.dtype), tuple(data.shape[2:]))
        if self._signature is None:
            self._signature = sig
        elif sig != self._signature:
            raise SamplerOutputError(
                f"draw() returned {_describe(sig)} after {_describe(self._signature)}; every call "
                "must return the same type, dtype and sample shape (convert inside draw, e.g. "
                "return x.float()), otherwise equal outcomes would compare unequal"
            )

    def seen_keys(self) -> torch.Tensor | None:
        """Keys (B, M, d) of the first draws made for all problems, or None if there were none."""
        if not self._seen:
            return None
        if len(self._seen) > 1:
            self._seen = [torch.cat([k.to(self._seen[0].device) for k in self._seen], dim=1)]
        return self._seen[0]


class _RowsDraw:
    """``draw`` of :meth:`DrawSource.rows`: the parent's draw for rows ``index`` of B."""

    def __init__(self, parent: DrawSource, index: torch.Tensor) -> None:
        self.parent, self.index = parent, index

    def __call__(
        self, m: int, generator: list[torch.Generator] | None = None, active: Any = None
    ) -> Any:
        """``generator``: the drawn rows' own generators, which are the parent's for the same
        rows, so the parent's :meth:`DrawSource._generator_kwargs` passes them on."""
        p = self.parent
        assert p.row_draws is not None
        chosen = self.index if active is None else self.index[active.cpu()]
        full = torch.zeros(len(p.row_draws), dtype=torch.bool)
        full[chosen] = True
        kwargs = p._generator_kwargs(full)
        if p.accepts_active:
            return p.draw(m, active=full, **kwargs)
        raw = p.draw(m, **kwargs)
        if isinstance(raw, torch.Tensor):
            return raw[chosen.to(raw.device)]
        if isinstance(raw, (list, tuple)):
            return [raw[i] for i in chosen.tolist()]
        return raw[chosen.numpy()]


def _positions(keys: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """Indices (B, length) of draws start .. start + length - 1 of every problem (host)."""
    return torch.arange(start, start + length).expand(keys.shape[0], length)


def _joined(
    a: tuple[Samples, torch.Tensor], b: tuple[Samples, torch.Tensor]
) -> tuple[Samples, torch.Tensor]:
    """Two (samples, keys) parts, their draws one after the other."""
    return a[0].cat(b[0]), torch.cat([a[1], b[1].to(a[1].device)], 1)


def _describe(sig: tuple[Any, ...]) -> str:
    if sig[0] == "list":
        return "a list"
    return f"a {sig[0]} of dtype {sig[1]} with sample shape {sig[2]}"
