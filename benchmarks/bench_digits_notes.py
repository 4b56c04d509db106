"""The digits demo's notes, measured: the figures docs/diffusion.md quotes around the digits table.

* the class law P of the shipped digits DDPM (``LAW_SAMPLES`` plain draws at 10 DDIM steps,
  seed 0: the same draws as ``itemp demo digits``'s P row);
* the batch rule's true TV on that P (``batch_tv``: the exact selection law of simulated pools,
  no sampled outputs) at the N and T the page discusses;
* the share of distinct ``image_hash`` keys among ``HASH_DRAWS`` draws at hash sizes 4 and 8;
* the shipped classifier's held-out accuracy (recorded in ``classifier.json`` by
  scripts/train_digits.py);
* images/s of the digits pipeline (:func:`benchmarks.bench_diffusion.run_digits`).

``make bench`` writes them into docs/diffusion.md's generated blocks ``digits-classifier``,
``digits-batch-bias``, ``digits-hash`` and ``digits-speed`` (see :mod:`benchmarks.docblocks`);
``--quick`` runs smaller and writes only the benchmarks page.

    python -m benchmarks --only digits_notes
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .common import ROOT

DOC_PAGE = ROOT / "docs" / "diffusion.md"
LAW_SAMPLES = 4000
STEPS = 10
HASH_DRAWS = 100
#: (T, N) pairs of the batch-bias note
BATCH_SETTINGS = ((0.5, 32), (0.5, 64), (0.25, 32), (0.25, 64), (0.25, 100), (2.0, 32), (2.0, 64))
POOLS = 40_000


def run(quick: bool) -> dict[str, Any]:
    """``{"quick", "p", "accuracy", "batch_tv", "hash_distinct", "speed", "seconds"}``."""
    from implicit_temperature.core.batch_law import batch_tv
    from implicit_temperature.demos.digits import held_out_accuracy, load_digits_sampler
    from implicit_temperature.quantizers import resolve_quantizer

    from .bench_diffusion import run_digits

    start = time.perf_counter()
    law_samples = 1000 if quick else LAW_SAMPLES
    digits = load_digits_sampler(STEPS)
    plain, p = digits.class_law(law_samples, torch.Generator().manual_seed(0))
    pools = 2000 if quick else POOLS
    tvs = [
        {"t": t, "n": n, "tv": batch_tv(p, t, n, pools=pools, generator=0).tv}
        for t, n in BATCH_SETTINGS
    ]
    images = plain[:HASH_DRAWS]
    distinct = {}
    for size in (4, 8):
        keys = resolve_quantizer("image_hash", hash_size=size)(images)
        distinct[size] = int(torch.unique(keys.reshape(len(images), -1), dim=0).shape[0])
    return {
        "quick": quick,
        "law_samples": law_samples,
        "p": [round(float(v), 4) for v in p],
        "accuracy": held_out_accuracy(),
        "pools": pools,
        "batch_tv": tvs,
        "hash_distinct": distinct,
        "hash_draws": len(images),
        "speed": run_digits(quick),
        "seconds": time.perf_counter() - start,
    }


def _tv(result: dict[str, Any], t: float, n: int) -> str:
    for row in result["batch_tv"]:
        if row["t"] == t and row["n"] == n:
            return f"{row['tv']:.3f}"
    raise KeyError((t, n))


def _bullet(text: str) -> str:
    """``text`` as one Markdown bullet (one line: a wrap could split ``**99.8 %**``)."""
    return "* " + text


def classifier_note(result: dict[str, Any]) -> str:
    """The bullet on the shipped classifier (its recorded held-out accuracy)."""
    acc = result["accuracy"]
    measured = f"held-out accuracy **{100 * acc:.1f} %**" if acc is not None else "not tested"
    return _bullet(
        f"**the quantizer** — a shipped digit classifier (a 2-layer CNN, 150 KB; {measured} on "
        "450 test digits, as scripts/train_digits.py recorded it in `classifier.json`), used "
        "through the `classifier` quantizer, so that two images are the same outcome when they "
        "show the same digit:"
    )


def batch_bias_note(result: dict[str, Any]) -> str:
    """The bullet on the batch rule's bias on the digits' P."""
    tv = lambda t, n: _tv(result, t, n)  # noqa: E731
    return _bullet(
        f"The batch method is biased for small pools, and more so far from T = 1. On this P "
        f"({result['law_samples']} plain draws, as in the table; true TVs of the batch rule's "
        f"output law from {result['pools']:,} simulated pools): TV {tv(0.5, 32)} / "
        f"{tv(0.5, 64)} at T = 0.5 with N = 32 / 64, {tv(0.25, 32)} / {tv(0.25, 64)} / "
        f"{tv(0.25, 100)} at T = 0.25 with N = 32 / 64 / 100, {tv(2.0, 32)} / {tv(2.0, 64)} at "
        "T = 2 with N = 32 / 64. The exact method has no bias; at T = 0.25 it pays for it with "
        "the draws per image shown in the table."
    )


def hash_note(result: dict[str, Any]) -> str:
    """The bullet on the image hash's share of distinct keys."""
    m = result["hash_draws"]
    four, eight = (100 * result["hash_distinct"][s] / m for s in (4, 8))
    return _bullet(
        f"The default `image_hash` quantizer would temper something else: on 8 × 8 digits its "
        f"4 × 4 cells (2 × 2 pixels each) repeat often ({four:.0f} % of {m} draws are "
        "distinct), so temperature acts on light/dark layouts rather than digits, and no "
        'warning fires. A hash at full resolution (`quantizer_options={"hash_size": 8}`) '
        f"makes {eight:.0f} % of the draws distinct, and the batch method warns "
        "(`TemperatureWarning`: \"... use a coarser quantizer (e.g. 'classifier') ...\")."
    )


def speed_table(result: dict[str, Any]) -> str:
    """The digits pipeline's images/s table."""
    lines = [
        "| setting | images/s (best) | images/s (median) | model draws per image | cost vs T = 1 |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["speed"].items():
        label = name.removeprefix("digits: ").replace("T=", "T = ").replace(" batch", ", batch")
        label = label.replace(" exact", ", exact") if "exact" in label else label
        if label == "T = 1":
            label = "T = 1, plain draws"
        lines.append(
            f"| {label} | {row['images_per_s_best']:g} | {row['images_per_s_median']:g} | "
            f"{row['draws_per_image']:g} | {row['slowdown_vs_T1']:g}× |"
        )
    rounds = next(iter(result["speed"].values()))["rounds"]
    lines += [
        "",
        f"*`benchmarks.bench_diffusion.run_digits`, {rounds} round-robin rounds, written by "
        "`make bench` (docs/benchmarks.md shows the machine).*",
    ]
    return "\n".join(lines)


def doc_blocks(result: dict[str, Any]) -> dict[Path, dict[str, str]]:
    """docs/diffusion.md's blocks (none for a quick run: its figures are too rough)."""
    if result["quick"]:
        return {}
    return {
        DOC_PAGE: {
            "digits-classifier": classifier_note(result),
            "digits-batch-bias": batch_bias_note(result),
            "digits-hash": hash_note(result),
            "digits-speed": speed_table(result),
        }
    }


def render(result: dict[str, Any], _figure: str | None) -> str:
    """The benchmarks page's section."""
    law = " ".join(f"{v:.3f}" for v in result["p"])
    return "\n".join(
        [
            "## Digits demo: the figures docs/diffusion.md quotes",
            "",
            f"Class law P of the shipped digits DDPM ({result['law_samples']} plain draws, "
            f"{STEPS} DDIM steps, seed 0): {law}.",
            "",
            batch_bias_note(result),
            hash_note(result),
            "",
            speed_table(result),
            "",
            f"Section time: {result['seconds']:.0f} s.",
        ]
    )
