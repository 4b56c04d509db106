"""The ``codebook`` quantizer: nearest centroid of a k-means codebook fitted on a pilot batch."""

from __future__ import annotations

from typing import Any

import torch

from .base import Quantizer, QuantizerError

_CHUNK_ELEMENTS = 1 << 24  # bound on the (rows, codes, d) difference tensor per chunk


def _check_int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise QuantizerError(f"codebook quantizer: {what} must be an int >= {low}, got {value!r}")
    return value


def nearest_code(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``codes`` (k, d) for each row of ``x`` (n, d): LongTensor (n,).

    Squared Euclidean distance, computed row by row (no matrix-product shortcut), so a sample's
    code does not depend on which other samples share its call. Ties go to the lowest index.
    Memory is bounded by processing rows in chunks.
    """
    n, k, d = x.shape[0], codes.shape[0], max(codes.shape[1], 1)
    chunk = max(1, _CHUNK_ELEMENTS // (k * d))
    out = torch.empty(n, dtype=torch.long, device=x.device)
    for start in range(0, n, chunk):  # loop over memory-sized chunks, not over samples
        block = x[start : start + chunk]
        dist = (block[:, None, :] - codes[None, :, :]).pow(2).sum(-1)
        out[start : start + chunk] = dist.argmin(dim=1)
    return out


def kmeans(
    x: torch.Tensor, num_codes: int, *, iters: int = 25, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Vectorised k-means (k-means++ seeding, then Lloyd iterations) -> centroids (k', d).

    ``x``: float tensor (N, d). ``k' = min(num_codes, number of distinct rows)``: seeding stops
    once every point coincides with a centroid. Empty clusters keep their previous centroid.
    Lloyd iterations stop early when no assignment changes. Deterministic for a given
    ``generator`` state (it must live on ``x``'s device).
    """
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator, device=x.device)
    centroids = x[first]
    d2 = (x - centroids).pow(2).sum(-1)
    for _ in range(num_codes - 1):  # k-means++: one vectorised pass per centroid
        total = d2.sum()
        if not total > 0:
            break
        pick = torch.multinomial(d2 / total, 1, generator=generator)
        centroids = torch.cat([centroids, x[pick]])
        d2 = torch.minimum(d2, (x - x[pick]).pow(2).sum(-1))
    k = centroids.shape[0]
    labels = nearest_code(x, centroids)
    for _ in range(iters):
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype).unsqueeze(1)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        new_labels = nearest_code(x, centroids)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centroids


class CodebookQuantizer(Quantizer):
    """Key each sample by its nearest centroid in a k-means codebook learned by :meth:`fit`.

    Options: ``num_codes`` (int >= 1, default 64), ``iters`` (Lloyd iterations, default 25),
    ``seed`` (k-means++ seeding, default 0), ``batched``. Call ``fit(pilot_samples)`` once on a
    pilot batch ``(N, ...)`` (or ``(B, N, ...)``: all problems share one codebook) drawn from the
    model, then ``quantizer(samples)`` gives keys ``(n,)`` in ``[0, num_codes)`` (``batched=True``:
    ``(B, n, ...)`` -> ``(B, n)``). Samples are flattened to vectors and compared by Euclidean
    distance in float32 (float64 if the pilot batch is float64). Using it before ``fit`` raises.
    If the pilot batch has fewer distinct samples than ``num_codes``, the codebook has one code per
    distinct sample.

    When to use: continuous outputs with more than a few dimensions (latents, embeddings,
    flattened small images, CALM vectors) where a regular grid would make almost every cell
    unique. The codes follow the data: dense regions get more, smaller cells. It loses everything
    inside a Voronoi cell (temperature acts on the probability of each cell; the returned sample
    is a model draw from its cell), and it depends on the pilot batch: regions the pilot batch
    never reached share the nearest code. Fit once and keep it: refitting during a run changes
    what "the same outcome" means. Once fitted, temperature on the cells is exact.
    """

    name = "codebook"

    def __init__(
        self, num_codes: int = 64, *, iters: int = 25, seed: int = 0, batched: bool = False
    ) -> None:
        super().__init__(batched=batched)
        self.num_codes = _check_int(num_codes, "num_codes", 1)
        self.iters = _check_int(iters, "iters", 0)
        self.seed = _check_int(seed, "seed", 0)
        self.codebook: torch.Tensor | None = None
        self._sample_shape: tuple[int, ...] | None = None

    @property
    def fitted(self) -> bool:
        """True once :meth:`fit` has learned a codebook."""
        return self.codebook is not None

    def fit(self, samples: Any, *, batched: bool | None = None) -> CodebookQuantizer:
        """Learn the codebook from a pilot batch ``(N, ...)`` (``batched``: ``(B, N, ...)``).

        Returns ``self``. The pilot batch must hold at least ``num_codes`` samples.
        """
        x = self._prepare(samples)
        flat, _ = self._flatten(x, self.batched if batched is None else batched)
        vectors = self._vectors(flat)
        if vectors.shape[0] < self.num_codes:
            raise QuantizerError(
                f"codebook quantizer: the pilot batch has {vectors.shape[0]} samples but "
                f"num_codes={self.num_codes}; fit on at least num_codes samples (ideally 20x more)"
            )
        if not torch.isfinite(vectors).all():
            raise QuantizerError(
                "codebook quantizer: the pilot batch contains NaN or inf; fix the sampler"
            )
        gen = torch.Generator(device=vectors.device).manual_seed(self.seed)
        self.codebook = kmeans(vectors, self.num_codes, iters=self.iters, generator=gen)
        self._sample_shape = tuple(flat.shape[1:])
        return self

    def _vectors(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            x = torch.view_as_real(x)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        return x.reshape(x.shape[0], -1).to(dtype)

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if self.codebook is None:
            raise QuantizerError(
                "the 'codebook' quantizer is not fitted; call quantizer.fit(pilot_samples) on a "
                f"pilot batch of at least {self.num_codes} model samples before using it"
            )
        if tuple(x.shape[1:]) != self._sample_shape:
            raise QuantizerError(
                f"codebook quantizer: samples of shape {tuple(x.shape[1:])} but the codebook was "
                f"fitted on samples of shape {self._sample_shape}"
            )
        vectors = self._vectors(x)
        if not torch.isfinite(vectors).all():
            raise QuantizerError(
                "the 'codebook' quantizer got NaN or infinite samples, which are at no distance "
                "from any code (they would all silently get code 0); fix the sampler, or use a "
                "'classifier' quantizer that gives such samples a label of their own"
            )
        return nearest_code(vectors.to(self.codebook.dtype), self.codebook.to(vectors.device))

    def _repr_options(self) -> str:
        return (
            f"num_codes={self.num_codes}, iters={self.iters}, seed={self.seed}, "
            f"batched={self.batched}, fitted={self.fitted}"
        )
