"""Diagnostics: did temperature have anything to act on?

Temperature reweights outcomes (keys) by how often they collide. Two situations leave it
powerless, and both are easy to fall into with continuous outputs:

* almost every sample has a key of its own (a quantizer that is too fine, e.g. an image hash on
  real images): the batch method then sees no collision, its cascade falls to level 1 and the
  pick is a uniform draw from the pool, i.e. the model's own law P whatever T was asked for;
* one key covers every sample (a quantizer that is too coarse, e.g. a grid cell larger than the
  data): every output is "the same outcome", whatever T.

:func:`pool_statistics` computes the per-pool figures on the device, without a host sync (it is
safe inside vectorised code); :func:`check_diagnostics` reads them once on the host and raises a
:class:`~.errors.TemperatureWarning` with an actionable message.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import TemperatureWarning

#: the batch method warns when, on average over its pools, at least this share of the samples of
#: a pool were distinct outcomes (the selection is then almost a uniform pick from the pool).
DISTINCT_WARN_SHARE = 0.9
#: the one-key warning needs at least this many samples seen per problem (fewer agree by chance).
MIN_SAMPLES_ONE_KEY = 16


@dataclass(frozen=True)
class Diagnostics:
    """What the keys looked like, to tell whether temperature could act.

    seen:            "pool" (batch method: the N samples each output was chosen from) or "draws"
                     (exact method: the first draws of the run, at most ``samples`` per problem).
    samples:         samples per pool (batch) or draws looked at per problem (exact).
    distinct_keys:   LongTensor, distinct keys per pool: batch (num_outputs,) — batched
                     (B, num_outputs); exact () — batched (B,). With ``share_pool=True`` every
                     output has the same pool and the same figures.
    singleton_share: float64, same shape: share of the samples whose key occurs once.
    cascade_level:   batch method: the power s used per output (below 1/T where the pool had no
                     outcome frequent enough; see ``TemperatureResult.cascade_level``); else None.
    key_name:        the quantizer or key function the keys came from, if the caller named it.
    batched:         True when the figures have a leading problem dimension B.
    """

    seen: str
    samples: int
    distinct_keys: torch.Tensor
    singleton_share: torch.Tensor
    cascade_level: torch.Tensor | None = None
    key_name: str | None = None
    batched: bool = False

    def per_problem_distinct_share(self) -> torch.Tensor:
        """float64 (B,) (unbatched: (1,)): distinct keys / samples, averaged over each problem's
        pools."""
        d = self.distinct_keys.double()
        d = d.reshape(d.shape[0], -1) if self.batched else d.reshape(1, -1)
        return d.mean(dim=1) / max(self.samples, 1)

    @property
    def distinct_share(self) -> float:
        """Mean over pools/problems of distinct keys / samples (1.0: every sample distinct)."""
        if self.samples == 0 or self.distinct_keys.numel() == 0:
            return float("nan")
        return float(self.distinct_keys.double().mean()) / self.samples

    @property
    def one_key(self) -> bool:
        """True when every pool (or every problem's draws) had a single key."""
        return self.distinct_keys.numel() > 0 and bool((self.distinct_keys == 1).all())

    def __repr__(self) -> str:
        if self.distinct_keys.numel() == 0:
            return f"Diagnostics(seen={self.seen!r}, empty)"
        d = self.distinct_keys.double()
        spread = (
            f"{int(self.distinct_keys.min())}..{int(self.distinct_keys.max())}"
            if self.distinct_keys.numel() > 1
            else f"{int(self.distinct_keys.reshape(-1)[0])}"
        )
        parts = [
            f"seen={self.seen!r}",
            f"samples={self.samples}",
            f"distinct_keys={spread} (mean {float(d.mean()) / max(self.samples, 1):.0%})",
            f"singletons={float(self.singleton_share.double().mean()):.0%}",
        ]
        if self.cascade_level is not None and self.cascade_level.numel():
            lo, hi = float(self.cascade_level.min()), float(self.cascade_level.max())
            parts.append(f"cascade_level={lo:g}" if lo == hi else f"cascade_level={lo:g}..{hi:g}")
        if self.key_name:
            parts.append(f"key_name={self.key_name!r}")
        return "Diagnostics(" + ", ".join(parts) + ")"


def pool_statistics(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From counts (..., N) (how many samples of its pool share each sample's key, as returned by
    :func:`~.grouping.group_counts` or ``BatchSelection.counts``): distinct keys per pool,
    LongTensor (...,), and the singleton share per pool, float64 (...,). No host sync."""
    n = counts.shape[-1]
    distinct = torch.round((1.0 / counts.double()).sum(-1)).long()  # each key adds c * (1/c) = 1
    singles = (counts == 1).sum(-1).double() / max(n, 1)
    return distinct, singles


def _where(d: Diagnostics) -> str:
    return f" under quantizer {d.key_name}" if d.key_name else ""


def diagnostics_messages(
    d: Diagnostics,
    *,
    method: str,
    temperature: float,
    skip_distinct: bool = False,
    advice: str | None = None,
) -> list[str]:
    """The warnings due (texts) when temperature could not act on these keys.

    * batch method, T != 1: on average >= ``DISTINCT_WARN_SHARE`` of a pool's samples distinct;
    * any method, T != 1: one key covered all samples of every pool (at least
      ``MIN_SAMPLES_ONE_KEY`` samples seen per problem).
    Reads a few scalars from the device (one sync per result, never inside the samplers).
    ``skip_distinct``: leave the all-distinct case out; ``advice``: the caller's advice (an
    adapter's), replacing the generic quantizer advice.
    """
    if temperature == 1.0 or d.distinct_keys.numel() == 0:
        return []
    if d.samples >= MIN_SAMPLES_ONE_KEY and d.one_key:
        return [
            f"all {d.samples} samples{_where(d)} had the same key: temperature cannot change "
            "anything (every output is that one outcome); use a finer quantizer (e.g. a smaller "
            "cell_size for 'grid', more num_codes for 'codebook') or a key that separates the "
            "outcomes you care about"
        ]
    if method != "batch" or d.samples < 2 or skip_distinct:
        return []
    shares = d.per_problem_distinct_share()
    bad = shares >= DISTINCT_WARN_SHARE
    n_bad = int(bad.sum())
    if not n_bad:
        return []
    if n_bad:
        share = float(shares[bad].mean())
        direction = "sharpening" if temperature < 1.0 else "flattening"
        which = f"for {n_bad} of {shares.numel()} problems, " if d.batched else ""
        return [
            f"{which}{share:.0%} of the {d.samples} samples{_where(d)} were distinct: temperature "
            "had almost no effect (the batch method found too few repeated outcomes for "
            f"{direction}, so the pick is close to a plain model draw); "
            + (advice or _QUANTIZER_ADVICE)
        ]
    return []


def check_diagnostics(
    d: Diagnostics,
    *,
    method: str,
    temperature: float,
    skip_distinct: bool = False,
    advice: str | None = None,
) -> None:
    """Warn (:class:`TemperatureWarning`) when temperature could not act on these keys (the cases
    of :func:`diagnostics_messages`)."""
    for message in diagnostics_messages(
        d, method=method, temperature=temperature, skip_distinct=skip_distinct, advice=advice
    ):
        _warn(message)


_QUANTIZER_ADVICE = (
    "use a coarser quantizer (e.g. 'classifier', a larger cell_size for 'grid', fewer num_codes "
    "for 'codebook') or a larger num_samples"
)


def _warn(message: str) -> None:
    """warnings.warn attributed to the first caller outside this package (and outside torch's
    decorators)."""
    from .tolerance import warn  # local: tolerance imports the estimator

    warn(message, TemperatureWarning)


def make_diagnostics(
    *,
    pool_counts: torch.Tensor | None,
    seen_keys: torch.Tensor | None,
    cascade_level: torch.Tensor | None,
    key_name: str | None,
    batched: bool,
    pool_stats: tuple[torch.Tensor, torch.Tensor, int] | None = None,
) -> Diagnostics:
    """Diagnostics of one run: from the batch method's pool counts (B, num_outputs, N) or their
    :func:`pool_statistics` already taken (``pool_stats``: distinct, singles, N), else from the
    keys of the first draws (B, M, d). Unbatched runs drop the leading B. No host sync."""
    if pool_stats is not None:
        distinct, singles, n = pool_stats
        seen, samples = "pool", int(n)
    elif pool_counts is not None:
        distinct, singles = pool_statistics(pool_counts)
        seen, samples = "pool", int(pool_counts.shape[-1])
    elif seen_keys is not None:
        from .grouping import group_counts  # local: grouping is heavier than this module needs

        counts, _ = group_counts(seen_keys)
        distinct, singles = pool_statistics(counts)
        seen, samples = "draws", int(seen_keys.shape[1])
    else:
        empty = torch.zeros(0, dtype=torch.long)
        return Diagnostics("draws", 0, empty, empty.double(), cascade_level, key_name, batched)
    if not batched:
        distinct, singles = distinct[0], singles[0]
    return Diagnostics(seen, samples, distinct, singles, cascade_level, key_name, batched)
