"""``itemp demo calm``: temperature on the shipped CALM demo model (CPU, well under a minute).

Prints continuations of a prompt at several temperatures, then the next-chunk law after the
prompt: the measured frequencies at T against the T = 1 frequencies raised to 1/T and
renormalised, with the total-variation distance between the two.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from ...adapters.calm import CALMAdapter, generate, pad_to_chunks
from ...core import temperature_sample
from ...core.errors import InvalidArgumentError
from ..laws import frequencies, tempered, total_variation
from . import grammar
from .pretrained import DEMO_PROMPTS, load_demo_model

REFERENCE_DRAWS = 50000  # T = 1 draws that estimate P(next chunk)
TEMPERED_OUTPUTS = 4000  # samples at T for the measured column
NUM_CONTINUATIONS = 3
MIN_SHOWN = 0.002  # chunks rarer than this at T = 1 and at T are pooled in one row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompt",
        default=DEMO_PROMPTS[0],
        help="best a whole number of 4-character chunks, e.g. 'cat ' or "
        "'dog saw '; other lengths are padded with <pad> after the prompt, as "
        "the reference CALM generate does (default: '%(default)s')",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.5,
        help="T > 0 of the continuations and the table; T = 1 and T = 2 are "
        "always shown too (default: %(default)s)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "exact", "batch"),
        default="auto",
        help="'exact' needs T <= 1; 'batch' works for any T; 'auto' plans "
        "exact from a pilot batch and keeps it where it fits the budget, else "
        "batch (default: %(default)s)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=200, help="N of the batch method (default: %(default)s)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=24,
        help="tokens per continuation (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random draw (default: %(default)s)"
    )
    parser.add_argument(
        "--reference-draws",
        type=int,
        default=REFERENCE_DRAWS,
        help="T = 1 draws that estimate the next-chunk law for the table (default: %(default)s)",
    )
    parser.add_argument(
        "--table-samples",
        type=int,
        default=TEMPERED_OUTPUTS,
        help="samples at T for the table's measured column (default: %(default)s)",
    )


def _label(tok, row: torch.Tensor) -> str:
    text = tok.decode(row, skip_special_tokens=False)
    return "<eos>" if text.startswith("<eos>") else repr(text)


def next_chunk_table(
    model,
    tok,
    prompt_ids: torch.Tensor,
    temperature: float,
    method: str,
    num_samples: int,
    seed: int,
    reference_draws: int = REFERENCE_DRAWS,
    table_samples: int = TEMPERED_OUTPUTS,
) -> tuple[list[tuple], float, float]:
    """Rows (chunk, P_1 measured, P_1^(1/T) renormalised, measured at T), their TV, and a bound
    on the TV that sampling noise alone gives on average at these sample sizes."""
    adapter = CALMAdapter(model, context=prompt_ids)
    g = torch.Generator().manual_seed(seed)
    ref = adapter.draw(reference_draws, generator=g)[0]  # (M1, K)
    res = temperature_sample(
        adapter.draw,
        temperature,
        key=adapter.quantize,
        method=method,
        num_samples=num_samples,
        num_outputs=table_samples,
        generator=g,
        batched=True,
    )
    hot = res.samples[0]  # (M, K)
    chunks, inverse = torch.unique(torch.cat([ref, hot]), dim=0, return_inverse=True)
    n = chunks.shape[0]
    p1 = frequencies(inverse[: len(ref)], n)
    pt = frequencies(inverse[len(ref) :], n)
    target = tempered(p1, temperature)
    tv = total_variation(pt, target)
    # what sampling noise alone gives on average (Jensen bounds): the sample at T,
    # 1/2 sum sqrt(q (1 - q) / M), plus the target estimate propagated to first order through
    # q = p^s / Z (dq_x = s q_x (dp_x / p_x - sum_y q_y dp_y / p_y)): s sum (q/p) sqrt(p (1-p) / M1)
    s = 1.0 / temperature
    ratio = torch.where(p1 > 0, target / p1.clamp(min=1e-300), torch.zeros_like(p1))
    noise = 0.5 * (target * (1 - target) / len(hot)).sqrt().sum().item()
    noise += s * (ratio * (p1 * (1 - p1) / len(ref)).sqrt()).sum().item()
    order = torch.argsort(p1, descending=True)
    shown = order[torch.maximum(p1, pt)[order] >= MIN_SHOWN]
    rest = order[torch.maximum(p1, pt)[order] < MIN_SHOWN]
    rows = [(_label(tok, chunks[i]), p1[i].item(), target[i].item(), pt[i].item()) for i in shown]
    if len(rest):
        rows.append(
            (
                f"({len(rest)} other chunks)",
                p1[rest].sum().item(),
                target[rest].sum().item(),
                pt[rest].sum().item(),
            )
        )
    return rows, tv, noise


def run(args: argparse.Namespace) -> int:
    """Print continuations at T = 1, 2 and ``--temperature``, then the next-chunk table; a bad
    argument is one line on stderr and exit status 2."""
    t0 = time.perf_counter()
    model, tok = load_demo_model()
    try:
        prompt_ids = tok.encode(args.prompt)
        padding = -prompt_ids.shape[1] % model.patch_size
        prompt_ids = pad_to_chunks(prompt_ids, model.patch_size, tok.pad_token_id)
        _check_arguments(args)
        _print_intro(model, args.prompt, padding)
        for t in sorted({1.0, 2.0, args.temperature}, reverse=True):
            _print_continuations(model, tok, prompt_ids, t, args)
        rows, tv, noise = next_chunk_table(
            model,
            tok,
            prompt_ids,
            args.temperature,
            args.method,
            args.num_samples,
            args.seed,
            args.reference_draws,
            args.table_samples,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_table(args, rows, tv, noise)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Raise :class:`InvalidArgumentError` naming the flag: counts >= 1, T > 0, exact only for
    T <= 1."""
    for name in ("num_samples", "max_new_tokens", "reference_draws", "table_samples"):
        if getattr(args, name) < 1:
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be >= 1")
    if args.temperature <= 0:
        raise InvalidArgumentError(f"--temperature must be > 0, got {args.temperature}")
    if args.method == "exact" and args.temperature > 1:
        raise InvalidArgumentError(
            "--method exact needs --temperature <= 1; use --method batch for T > 1"
        )


def _print_intro(model: Any, prompt: str, padding: int) -> None:
    """The model, the prompt, the grammar, and a note when the prompt was padded."""
    print(f"CALM demo model (K = {model.patch_size} characters per step); prompt {prompt!r}")
    print(
        f"grammar: see implicit_temperature/demos/calm/grammar.py (branch weights "
        f"{grammar.BRANCH}, end of story {grammar.P_END})"
    )
    if padding:
        print(
            f"note: the prompt is {padding} token(s) short of a whole chunk and was padded "
            f"with {padding} <pad> after it (pad_to_chunks, as the reference CALM generate "
            "pads prompts); the grammar never has <pad> inside a story, so expect the "
            "model to leave the grammar after this chunk"
        )
    print()


def _print_continuations(
    model: Any, tok: Any, prompt_ids: torch.Tensor, t: float, args: argparse.Namespace
) -> None:
    """``NUM_CONTINUATIONS`` continuations at ``t`` (``--method``, batch above T = 1), seeded
    by ``--seed``."""
    method = args.method if t <= 1 or args.method == "batch" else "batch"
    out = generate(
        model,
        prompt_ids.expand(NUM_CONTINUATIONS, -1),
        temperature=t,
        method=method,
        num_samples=args.num_samples,
        max_new_tokens=args.max_new_tokens,
        eos_token_id=tok.eos_token_id,
        generator=args.seed,
    )
    print(f"T = {t:g} ({method if t != 1 else 'plain draws'}):")
    for text in tok.batch_decode(out):
        print(f"    {text}")


def _print_table(args: argparse.Namespace, rows: list[tuple], tv: float, noise: float) -> None:
    """The next-chunk table of :func:`next_chunk_table` with its TV and noise level."""
    t = args.temperature
    print(
        f"\nnext chunk after {args.prompt!r}: {args.reference_draws} draws at T = 1, "
        f"{args.table_samples} samples at T = {t:g} ({args.method})"
    )
    print(f"  {'chunk':20} {'P(T=1)':>8} {'P^(1/T)/Z':>10} {'measured':>9}")
    for label, p1, target, pt in rows:
        print(f"  {label:20} {p1:8.4f} {target:10.4f} {pt:9.4f}")
    print(
        f"  total variation(measured, P^(1/T)/Z) = {tv:.4f}  "
        f"(sampling noise alone: about {noise:.3f} or less on average)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="itemp demo calm", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
