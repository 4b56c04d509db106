"""``itemp demo answers``: answer-level temperature over real HTTP, next to majority vote.

Serves the shipped answers model (one-digit additions, right about half the time) with
``itemp serve`` on 127.0.0.1, then asks it questions through the ``endpoint`` adapter with the
``final_number`` answer key, at T in {1, 0.5, 0.25, 0.1, ->0}: exact answer-level temperature
for T <= 1 (->0: the batch method at a tiny T, which is a majority vote of its pool). For every T
it measures accuracy (share of right answers), diversity (distinct answers among the outputs of
one question) and completions per answer, and compares with a majority vote over the same
number of completions. No network beyond loopback; every completion goes to a draw store.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output import METHOD_COLORS, add_output_arguments, figure_paths, new_figure, save_figure
from . import task

LEVELS: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1, 0.0)  # 0.0 stands for T -> 0
TINY_T = 1e-3  # the batch method here is a majority vote of its pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--questions", type=int, default=20, help="questions asked (default: %(default)s)"
    )
    parser.add_argument(
        "--outputs",
        type=int,
        default=8,
        help="answers per question and temperature (default: %(default)s)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=32,
        help="N of the T -> 0 point (a majority vote of N completions) (default: %(default)s)",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="draw store folder; rerun with the same --seed to replay it without requests "
        "(default: a temporary folder)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    add_output_arguments(parser, "demo-answers.png")


@dataclass
class Level:
    """What one temperature gave, averaged over the questions."""

    label: str
    accuracy: float
    diversity: float
    per_answer: float
    vote_accuracy: float
    vote_diversity: float
    vote_calls: int


def _sampler(base_url: str, prompt: str, store: Path) -> Any:
    from ...adapters.endpoint import Endpoint
    from ...plugins import TemperatureSampler

    return TemperatureSampler(
        Endpoint(base_url, model="answers"),
        prompt=prompt,
        quantizer="final_number",
        max_tokens=8,
        n_per_request=64,
        store=store,
    )


def _majority(answers: list[str | None], rng: random.Random) -> str | None:
    counts = Counter(answers)
    top = max(counts.values())
    return rng.choice(sorted((a for a, c in counts.items() if c == top), key=str))


def _vote(sampler: Any, calls: int, outputs: int, seed: int) -> list[str | None]:
    """``outputs`` majority votes, each over ``calls`` fresh completions."""
    adapter = sampler.adapter
    texts = adapter.draw(calls * outputs, generator=None)
    rng = random.Random(seed)
    return [
        _majority([adapter.answer_of(t) for t in texts[k * calls : (k + 1) * calls]], rng)
        for k in range(outputs)
    ]


def _level(t: float, qs: list[tuple[str, int]], args: argparse.Namespace, url: str) -> Level:
    acc = div = cost = vacc = vdiv = 0.0
    calls_all = []
    for i, (prompt, right) in enumerate(qs):
        s = _sampler(url, prompt, Path(args.store))
        seed = (args.seed * 10 + LEVELS.index(t)) * 1000 + i  # one stream per (T, question)
        if t == 0.0:
            res = s.sample(
                TINY_T,
                method="batch",
                num_samples=args.pool,
                num_outputs=args.outputs,
                generator=seed,
            )
        else:
            res = s.sample(
                t,
                method="exact",
                num_outputs=args.outputs,
                generator=seed,
                max_draws=args.max_draws,
            )
        answers = [s.adapter.answer_of(x) for x in res.samples]
        per = res.draws / args.outputs
        calls = max(1, round(per))
        calls_all.append(calls)
        s.adapter.stream_name = f"vote-{seed}-{calls}"
        votes = _vote(s, calls, args.outputs, seed)
        s.adapter.close()
        acc += sum(a == str(right) for a in answers) / len(answers)
        div += len(set(answers))
        cost += per
        vacc += sum(a == str(right) for a in votes) / len(votes)
        vdiv += len(set(votes))
    n = len(qs)
    label = "->0" if t == 0.0 else f"{t:g}"
    return Level(label, acc / n, div / n, cost / n, vacc / n, vdiv / n, round(sum(calls_all) / n))


def _table(levels: list[Level], outputs: int) -> str:
    lines = [
        f"{'T':>5} | {'accuracy':>8} {'distinct':>8} {'compl/answer':>12} | "
        f"{'majority of':>11} {'accuracy':>8} {'distinct':>8}",
        "-" * 75,
    ]
    for lv in levels:
        lines.append(
            f"{lv.label:>5} | {lv.accuracy:8.3f} {lv.diversity:8.2f} {lv.per_answer:12.1f} | "
            f"{lv.vote_calls:>11d} {lv.vote_accuracy:8.3f} {lv.vote_diversity:8.2f}"
        )
    lines.append(f"(distinct: answers among the {outputs} outputs of one question, mean)")
    return "\n".join(lines)


def _plot(levels: list[Level], path: Path, outputs: int) -> None:
    xs = list(range(len(levels)))
    fig = new_figure(figsize=(13, 3.8))
    panels = [
        ("accuracy (share right)", "accuracy", "vote_accuracy"),
        (f"distinct answers of {outputs}", "diversity", "vote_diversity"),
        ("completions per answer", "per_answer", None),
    ]
    for j, (title, ours, vote) in enumerate(panels):
        ax = fig.add_subplot(1, 3, j + 1)
        ax.plot(
            xs,
            [getattr(lv, ours) for lv in levels],
            "o-",
            color=METHOD_COLORS["exact"],
            label="answer-level temperature",
        )
        if vote:
            ax.plot(
                xs,
                [getattr(lv, vote) for lv in levels],
                "s--",
                color="tab:red",
                label="majority vote, same completions",
            )
        else:
            ax.set_yscale("log")
        ax.set_xticks(xs, [lv.label for lv in levels])
        ax.set_xlabel("T")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.legend(fontsize=8)
    fig.suptitle("answers model over HTTP (itemp serve + endpoint adapter, final_number key)")
    save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    from ...serve import start_server

    if not 1 <= args.questions <= len(task.questions()):
        raise SystemExit(f"--questions must be in 1..{len(task.questions())}")
    paths = figure_paths(args)
    rng = random.Random(args.seed)
    qs = rng.sample(task.questions(), args.questions)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.store is None:
            args.store = tmp
        with start_server("answers") as server:
            print(f"itemp serve answers on {server.base_url} ({time.perf_counter() - start:.1f} s)")
            levels = [_level(t, qs, args, server.base_url) for t in LEVELS]
    print(_table(levels, args.outputs))
    print(
        f"{args.questions} questions, {args.outputs} answers each; "
        f"{time.perf_counter() - start:.1f} s"
    )
    if paths:
        _plot(levels, paths[0], args.outputs)
    return 0 if all(math.isfinite(lv.accuracy) for lv in levels) else 1
