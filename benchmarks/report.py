"""Render the sections' results as Markdown (docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .common import core_constants
from .end_to_end import MODULES


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` significant figures (plain notation where readable)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf"
        if value == 0:
            return "0"
        if 1e-4 <= abs(value) < 1e6:
            decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
            return f"{value:.{decimals}f}"
        return f"{value:.{digits - 1}e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; cells go through :func:`fmt` unless already strings."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [c if isinstance(c, str) else fmt(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> float:
    return seconds * 1e3


def target_met(value: float, target: float, op: str) -> bool:
    """Whether ``value`` meets ``target`` under ``op`` (``"<="`` or ``">="``)."""
    return value <= target if op == "<=" else value >= target


def target_note(value: float, target: float, op: str) -> str:
    """``(target <= 1.1: met)`` or ``(target <= 1.1: **MISSED**)``: every target on the page says
    whether this run met it, so a miss is never passed over in silence."""
    verdict = "met" if target_met(value, target, op) else "**MISSED**"
    return f"(target {op} {fmt(target)}: {verdict})"


def header(env: dict, commands: dict, mode: str, timings: dict, load: tuple) -> str:
    rows = [(k, v) for k, v in env.items()]
    rows.append(("mode", mode))
    rows.append(("load average (1 min) at start / end", f"{load[0]:.2f} / {load[1]:.2f}"))
    rows.append(
        ("wall time per section (s)", ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    )
    cmd_lines = "\n".join(f"    {c}" for c in commands.values())
    return "\n\n".join(
        [
            "# Benchmarks",
            "What the toolkit costs on top of a sampler, how close it gets to the true P^(1/T), "
            "and what the alternatives give. Every number below comes from one run of the "
            "command shown; rerun it to check them on your machine. These are measurements, "
            "not tests: nothing here fails on a slow machine. Timings on a shared or loaded "
            "machine are noisy (see the load average); ratios measured side by side in one run "
            "are more stable than absolute times.",
            "## Machine and commands",
            table(("", ""), rows),
            "Produced by (from the repository root):\n\n" + cmd_lines,
            f"This {mode} run took {sum(timings.values()):.0f} s in all "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}) on "
            f"{env.get('logical cores', '?')} logical cores, load average "
            f"{load[0]:.2f} at the start and {load[1]:.2f} at the end (a busy machine takes "
            "several times longer). Full run: `make bench` (= `.venv/bin/python -m benchmarks`); "
            "quick run: `make bench-quick` (= `.venv/bin/python -m benchmarks --quick`, fewer "
            "repeats and a smaller grid). `--out PATH` writes the report elsewhere (figures go "
            "to `figures/` beside it); `--only SECTION ...` runs some sections, and with "
            "`--update` keeps the others' results from the record beside the report "
            "(docs/benchmarks.json). The full run "
            "that writes docs/benchmarks.md also rewrites the measured tables other pages quote "
            "(docs/diffusion.md's demo tables).",
        ]
    )


def _selection_lines(sel: dict) -> list[str]:
    lines = []
    rows = sel["rows"]
    for r in rows:
        if r["B"] == 256 and r["N"] == 200:
            one = r.get("speedup_1thread_vs_published")
            extra = "" if one is None else f"; with one torch thread **{one:.1f}x**"
            same_t = [x["speedup_vs_published"] for x in rows if x["T"] == r["T"]]
            lines.append(
                f"- Selection, B = 256, N = 200, T = {fmt(r['T'])}: `select_from_batch` vs the "
                f"published per-row loop: **{r['speedup_vs_published']:.1f}x** "
                + target_note(r["speedup_vs_published"], 10.0, ">=")
                + f" with {sel['threads']} torch thread(s) (medians; best of repeats "
                f"{r['speedup_best_vs_published']:.1f}x){extra}. Over every B and N at this T "
                "the ratio ranges from "
                f"{min(same_t):.2f}x to {max(same_t):.1f}x ({sel['threads']} thread(s))."
            )
    losses = [r for r in rows if r["speedup_vs_published"] < 1.0]
    if losses:
        lines.append(
            f"- The loop wins in {len(losses)} of {len(rows)} settings ("
            + ", ".join(
                f"T = {fmt(r['T'])}, B = {r['B']}, N = {r['N']}: "
                f"{fmt(r['speedup_vs_published'], 2)}x"
                for r in losses
            )
            + "): one small problem pays a fixed cost per call, and with several torch threads "
            "on a busy machine the threads' overhead can dominate (compare the 1-thread column)."
        )
    return lines


def _exact_lines(ex: dict) -> list[str]:
    ratios = [r["ratio"] for r in ex["rows"]]
    within = sum(x <= 1.3 for x in ratios)
    lines = [
        f"- Exact sampler, flat rounds, draws per output / expected, "
        f"num_outputs = {ex['outputs']}: {min(ratios):.2f} to {max(ratios):.2f} over "
        f"{len(ratios)} settings (target: within 1.3x; {within} of {len(ratios)} are"
        + ("" if within == len(ratios) else ": **MISSED**")
        + ")."
    ]
    trees = (ex.get("trees") or {}).get("rows") or []
    low = [r for r in trees if r["T"] <= 0.25]
    high = [r for r in trees if r["T"] >= 0.5]
    if low:
        worst = max(r["ratio_best"] for r in low)
        lines.append(
            f'- Collision trees (`plan="auto"`, pilot included, '
            f"num_outputs = {ex['trees']['outputs']}), T <= 0.25: draws per output / best "
            f"tree from {min(r['ratio_best'] for r in low):.2f} to {worst:.2f} "
            + target_note(worst, 1.3, "<=")
            + "; "
            + ", ".join(
                f"{r['law'].split(',')[0]} T = {fmt(r['T'])}: {fmt(r['measured'])} "
                f"(flat {fmt(r['flat'])})"
                for r in low
            )
            + "."
        )
    if high:
        worst = max(r["ratio_flat"] for r in high)
        lines.append(
            f"- At T >= 0.5 no split pays (the plan is the flat round, no pilot): draws per "
            f"output / flat rounds' expectation from {min(r['ratio_flat'] for r in high):.2f}"
            f" to {worst:.2f} " + target_note(worst, 1.05, "<=") + "."
        )
    cheaper = [r for r in trees if r["measured"] < 200]
    dearer = [f"{r['law'].split(',')[0]} at T = {fmt(r['T'])}" for r in trees if r not in cheaper]
    if trees:
        lines.append(
            f"- The exact method (exact P^(1/T)) spent fewer draws per output than one batch "
            f"of N = 200 in {len(cheaper)} of {len(trees)} settings"
            + (f"; not for {', '.join(dearer)}." if dearer else ".")
        )
    scaling = ex.get("scaling") or []
    if scaling:
        worst_row = max(scaling, key=lambda r: r["ratio"])
        lines.append(
            f"- With few outputs per call the lanes overshoot: up to "
            f"{worst_row['ratio']:.2f}x the formula ({worst_row['law']}, "
            f"T = {fmt(worst_row['T'])}, num_outputs = {worst_row['num_outputs']}); "
            "`max_lanes=1` avoids it at the price of one draw call per draw."
        )
    return lines


def _accuracy_lines(acc: dict) -> list[str]:
    lines = []
    for law in dict.fromkeys(r["law"] for r in acc["rows"]):
        cells = [
            f"T={fmt(r['T'])}: {fmt(r['tv_binomial'], 2)}"
            for r in acc["rows"]
            if r["law"] == law and r["N"] == 200
        ]
        lines.append(f"- Batch method TV to P^(1/T) at N = 200, {law}: " + ", ".join(cells))
    better = sum(r["tv_binomial"] < r["tv_plugin"] for r in acc["rows"])
    lines.append(
        f"- Ours (generalised binomial) has a smaller TV than the plug-in (c/N)^(1/T) in "
        f"{better} of {len(acc['rows'])} (law, T, N) settings; at T = 1/n it equals the "
        "published rule."
    )
    return lines


def _end_to_end_lines(e2e: dict) -> list[str]:
    entry = e2e.get("bench_calm") or {}
    speed = (entry.get("result") or {}).get("speed") if entry.get("status") == "ok" else None
    if not speed or "batch_over_keep_first" not in speed:
        return []
    value, target = speed["batch_over_keep_first"], speed["batch_over_keep_first_target"]
    return [
        f"- CALM decoding, batch method / draw-and-keep-first time at T = 0.5 (the selection's "
        f"own overhead, without the per-step accuracy estimate): {value:.3f} "
        + target_note(value, target, "<=")
        + (
            f"; with the default estimate {speed['estimated_batch_over_keep_first']:.3f}x "
            f"({speed['estimate_ms_per_step']:.1f} ms per step)."
            if "estimated_batch_over_keep_first" in speed
            else "."
        )
    ]


def summary(results: dict) -> str:
    """The page's headlines; each target is marked met or **MISSED** for this run."""
    lines = ["## Summary"]
    if results.get("selection"):
        lines += _selection_lines(results["selection"])
    if results.get("exact"):
        lines += _exact_lines(results["exact"])
    if results.get("accuracy"):
        lines += _accuracy_lines(results["accuracy"])
    if results.get("end_to_end"):
        lines += _end_to_end_lines(results["end_to_end"])
    return "\n".join(lines)


def selection_section(res: dict, figure: str | None) -> str:
    def ratio(x: float | None) -> str:
        return "—" if x is None else f"**{fmt(x, 2)}x**"

    rows = [
        (
            r["T"],
            r["B"],
            r["N"],
            _ms(r["published_s"]),
            _ms(r["tuned_s"]),
            _ms(r["ours_s"]),
            ratio(r["speedup_vs_published"]),
            f"{fmt(r['speedup_best_vs_published'], 2)}x",
            f"{fmt(r['speedup_vs_tuned'], 2)}x",
            None if r["ours_1thread_s"] is None else _ms(r["ours_1thread_s"]),
            ratio(r["speedup_1thread_vs_published"]),
        )
        for r in res["rows"]
    ]
    parts = [
        "## 1. Selection speed: `select_from_batch` vs the published per-row loop",
        f"Keys: B problems x N samples x K = {res['K']} positions, each position i.i.d. over 4 "
        "symbols with probabilities [.55, .25, .15, .05] (so chunks collide, as CALM chunks do "
        "at low T). *published loop*: a re-statement of the published CALM loop (per problem: "
        "one `tuple(chunk.tolist())` per sample, `collections.Counter`, then for n = 1/T, ..., 1 "
        "the chunks seen at least n times, `random.choices` with weights `math.comb(count, n)`; "
        "`benchmarks/bench_selection.py: published_select`). *tuned loop*: the same with one "
        "`.tolist()` per batch. *ours*: `select_from_batch(keys, T, generator=g)` plus gathering "
        "the chosen chunks. The contenders are called in turn (so background load hits all "
        f"alike), {res['repeats']} calls each after a warm-up; times are medians, measured "
        "with `time.perf_counter`, the garbage collector paused as `timeit` does, device "
        f"`{res['device']}`. *ours* runs with torch's default "
        f"`torch.get_num_threads()` = {res['threads']} and again after "
        "`torch.set_num_threads(1)`; the loops are single-threaded Python either way. "
        "Ratio = published loop time / ours, medians (higher is better for ours); *best of "
        "repeats* divides the fastest calls instead, which is less sensitive to other work "
        "on the machine.",
        table(
            (
                "T",
                "B",
                "N",
                "published loop (ms)",
                "tuned loop (ms)",
                f"ours, {res['threads']} threads (ms)",
                "ratio",
                "ratio, best of repeats",
                "ratio vs tuned loop",
                "ours, 1 thread (ms)",
                "ratio, 1 thread",
            ),
            rows,
        ),
        "On a machine whose cores are busy with other work (load average above the core "
        "count), torch's multi-threaded kernels can be far slower than one thread; compare "
        "both columns and consider `torch.set_num_threads(1)` there.",
    ]
    if figure:
        parts.append(f"![selection speed ratio]({figure})")
    return "\n\n".join(parts)


def exact_section(res: dict, figure: str | None) -> str:
    rows = []
    for r in res["rows"]:
        lanes, seq = r["single_lanes"], r["single_sequential"]
        rows.append(
            (
                r["law"],
                r["T"],
                r["formula"],
                f"{fmt(r['draws_per_output'])} ± {fmt(r['draws_se'], 2)}",
                f"**{r['ratio']:.2f}**",
                r["abandoned_fraction"],
                r["calls_per_output"],
                _ms(r["seconds_per_output"]),
                f"{fmt(seq['draws'])} ± {fmt(seq['draws_se'], 2)}",
                f"{fmt(lanes['calls'])} / {fmt(lanes['draws'])}",
            )
        )
    seq_ratios = [r["seq_ratio"] for r in res["rows"]]
    parts = [
        "## 2. Exact sampler: cost against T, flat rounds and collision trees",
        "With s = 1/T = n + a and S(r) = sum_x P(x)^r, Z_T = S(s), a **flat round** costs "
        "[1 + S(1) + ... + S(n-1) + S(s-1)·[a>0]] / Z_T draws per output "
        '(`expected_exact_draws(p, T, plan="flat")`): the collision stage makes its k-th draw '
        "iff the first k-1 agreed, and the draw that ends a round at its first mismatch is "
        "counted. A **collision tree** a+b pairs an output of a with one of b and keeps it when "
        "they agree: c(a+b) = (c(a) + c(b)) S(a) S(b) / S(a+b) (`expected_exact_draws(p, T)` "
        "gives the best tree's cost; docs/algorithms.md). `draw` samples a known categorical "
        "law (inverse CDF in float64).",
    ]
    trees = res.get("trees")
    if trees:
        parts.append(
            "**Flat rounds, collision trees and the batch method** (draws per output). "
            f'*plan="auto", measured*: `temperature_sample(draw, T, method="exact", '
            f"num_outputs={trees['outputs']})`, mean ± standard error of {trees['replicates']} "
            "runs; the pilot that plans the tree is included (its mean size per run is shown). "
            f"*best tree*: the planner's tree on the true law (splits on a "
            f"{core_constants()['GRID_STEP']:g} grid). "
            "*batch*: the batch method draws N = 200 per output whatever T (approximate)."
        )
        parts.append(
            table(
                (
                    "law",
                    "T",
                    "flat rounds (expected)",
                    "best tree (expected)",
                    "best plan",
                    'plan="auto", measured',
                    "plan used",
                    "pilot draws",
                    "measured / best tree",
                    "measured / flat",
                    "batch, N = 200",
                ),
                (
                    (
                        r["law"],
                        r["T"],
                        r["flat"],
                        r["best_tree"],
                        f"`{r['best_plan']}`",
                        f"{fmt(r['measured'])} ± {fmt(r['measured_se'], 2)}",
                        f"`{r['plan']}`",
                        r["pilot"],
                        f"**{r['ratio_best']:.2f}**",
                        f"{r['ratio_flat']:.3g}",
                        r["batch"],
                    )
                    for r in trees["rows"]
                ),
            )
        )
        parts.append(
            "Above T = 1/2 no split applies (each side of a+b needs an exponent of at least 1), "
            "and at T = 1/2 the split 1+1 costs exactly what the flat round costs, so the plan is "
            "the flat round and no pilot is drawn. Below, the tree's cost grows about like 1/T "
            "while the flat rounds' grows like 1/Z_T."
        )
    single = res.get("single")
    if single:
        c = core_constants()
        parts.append(
            '**A single output** (`num_outputs=1`, `plan="auto"`; mean ± standard error over '
            f"independent runs, pilot included): the pilot starts at {c['PILOT_MIN']} draws and "
            f"only grows to {c['PILOT_SHARE']:.0%} of the planned cost, so it does not dominate."
        )
        parts.append(
            table(
                (
                    "law",
                    "T",
                    "runs",
                    "draws per call",
                    "of which pilot",
                    "best tree",
                    "draws / best tree",
                ),
                (
                    (
                        r["law"],
                        r["T"],
                        r["runs"],
                        f"{fmt(r['draws'])} ± {fmt(r['draws_se'], 2)}",
                        r["pilot"],
                        r["best_tree"],
                        f"**{r['ratio_best']:.2f}**",
                    )
                    for r in single["rows"]
                ),
            )
        )
    parts += [
        "**Flat rounds against their formula.** "
        f'`temperature_sample(draw, T, method="exact", plan="flat", num_outputs={res["outputs"]})`'
        f" with the default lanes (max_lanes = {res['max_lanes']}), {res['replicates']} "
        "independent replicates; draws per output is their mean ± standard error. *abandoned*: "
        "fraction of started rounds dropped because they began after the last needed acceptance. "
        "*calls/output*: sequential `draw` calls per output in that run. The two last columns "
        f"are the latency of a single output (`num_outputs=1`, mean of {res['single_repeats']} "
        "runs): without lanes (`max_lanes=1`, the sequential baseline: one draw per call, so "
        "calls = draws, shown ± standard error) and with lanes (default; sequential draw calls "
        "/ draws).",
        table(
            (
                "law",
                "T",
                "expected",
                "measured draws/output",
                "measured / expected",
                "abandoned",
                "calls/output",
                "ms/output",
                "1 output, max_lanes=1: calls = draws",
                "1 output, lanes: calls / draws",
            ),
            rows,
        ),
        "The sequential baseline's draws (one output at a time, no lanes, so no waste) give "
        f"measured / expected from {min(seq_ratios):.2f} to {max(seq_ratios):.2f} "
        f"(each a mean of only {res['single_repeats']} outputs). Lanes cut the sequential calls "
        "per output (latency) at the price of extra draws when only one output is wanted. "
        "The flat cost is not monotone in T: just below T = 1/n the fractional part "
        "a = 1/T - n is small and the Bernoulli factory needs about P(x)^(a-1), i.e. nearly "
        "1/P(x), flips, so T = 0.49 costs more than T = 0.5 (figure).",
    ]
    scaling = res.get("scaling")
    if scaling:
        parts.append(
            "**Draws per output against `num_outputs`** (flat rounds, default lanes; mean ± "
            "standard error over independent runs). The lane count follows an acceptance rate "
            "estimated on the fly; early on, quick rejections are seen before slow acceptances, "
            "so the sampler starts more rounds than needed, and rounds that finish before the "
            "last needed acceptance is known are paid for. The overhead is per call, so it fades "
            "as `num_outputs` grows; `max_lanes=1` has none."
        )
        parts.append(
            table(
                ("law", "T", "num_outputs", "runs", "draws/output", "measured / expected"),
                (
                    (
                        r["law"],
                        r["T"],
                        r["num_outputs"],
                        r["runs"],
                        f"{fmt(r['draws_per_output'])} ± {fmt(r['draws_se'], 2)}",
                        f"**{r['ratio']:.2f}**",
                    )
                    for r in scaling
                ),
            )
        )
    if figure:
        parts.append(f"![exact cost against T]({figure})")
    return "\n\n".join(parts)


def accuracy_section(res: dict, figure: str | None) -> str:
    parts = [
        "## 3. Accuracy: total-variation distance to P^(1/T)",
        "How: for M independent batches of N draws from a known law P, "
        "`selection_probabilities(keys, T)` gives the exact probability that the batch method "
        "picks each sample. Scatter-adding them per outcome gives w_b(x), the exact law of the "
        "output given batch b; the method's output law is q(x) = E_b[w_b(x)], estimated over the "
        "M batches with the batch frequency c_b(x)/N (known mean P(x)) as a control variate. "
        "TV = 0.5 sum_x |q(x) - P_T(x)|. *noise* = 0.5 sum_x SE_x sqrt(2/pi), the TV a perfect "
        "method would show with the same M: values near it are at the measurement floor. "
        "Cells: **ours** (generalised binomial with cascade) / plug-in (c/N)^(1/T). At T = 1/n "
        "(0.25, 0.5) the published rule is ours by construction (identity check below), so its "
        "TV is the first number. (Not a timing; computed with `torch.set_num_threads(1)`.)",
    ]
    for law in dict.fromkeys(r["law"] for r in res["rows"]):
        sub = [r for r in res["rows"] if r["law"] == law]
        sizes = sorted({r["N"] for r in sub})
        temps = sorted({r["T"] for r in sub})
        cell = {(r["T"], r["N"]): r for r in sub}
        rows = []
        for t in temps:
            row: list[object] = [
                f"{fmt(t)}"
                + (" (published = ours)" if cell[(t, sizes[0])]["published_is_ours"] else "")
            ]
            for n in sizes:
                r = cell[(t, n)]
                row.append(f"**{fmt(r['tv_binomial'], 2)}** / {fmt(r['tv_plugin'], 2)}")
            rows.append(row)
        noise = [
            f"N={n}: M={cell[(temps[0], n)]['batches']}, noise <= "
            f"{fmt(max(cell[(t, n)]['noise_binomial'] for t in temps), 2)}"
            for n in sizes
        ]
        parts.append(f"**{law}** — TV ours / plug-in")
        parts.append(table(["T"] + [f"N = {n}" for n in sizes], rows))
        parts.append("Batches and noise floor: " + "; ".join(noise) + ".")
    ident = res["identity"]
    if ident:
        worst = max(r["max_abs_diff"] for r in ident)
        parts.append(
            "**Published rule = ours at T = 1/n.** For each law, N and T in {0.25, 0.5}, the "
            f"first {ident[0]['batches']} batches: per-outcome selection probabilities of "
            "`selection_probabilities` (scatter-added) against a `math.comb` restatement of the "
            f"published rule (`benchmarks/bench_accuracy.py: published_outcome_law`). Largest "
            f"absolute difference over {len(ident)} settings: **{worst:.1e}** (float rounding)."
        )
    if figure:
        parts.append(f"![accuracy against N]({figure})")
    return "\n\n".join(parts)


def auto_section(res: dict) -> str:
    c = core_constants()
    rows = [
        (
            r["law"],
            r["T"],
            r["N"],
            r["outputs"],
            r["max_draws"],
            f"**{r['method']}**",
            r["pilot_estimate"],
            r["true_expected"],
            r["draws"],
            r["reason"],
        )
        for r in res["rows"]
    ]
    return "\n\n".join(
        [
            '## 4. What `method="auto"` chooses',
            f"auto draws a small pilot ({c['PILOT_MIN']} draws per problem, growing to "
            f"{c['PILOT_SHARE']:.0%} of the planned cost, at most N and at most "
            f"{c['PILOT_BUDGET_SHARE']:.0%} of `max_draws`), plans the exact method's collision "
            "tree from it and estimates its cost; "
            "it runs exact when the estimate is at most "
            f"{res['budget_factor']} x the batch method's draws (without `max_draws`) or at most "
            f"{res['exact_share']:g} x what is left of `max_draws`, else the batch method. The "
            "choice is made before any exact draw and kept: an exact run that overruns "
            "`max_draws` raises `DrawBudgetExceeded` (it never switches to batch, which would "
            "keep only the short runs and bias the law), and when neither method fits it raises "
            "at once. *pilot estimate* and *true expected* are the exact method's total draws for "
            "all outputs (the latter from the known law, best tree); *draws* is what the run "
            "spent, pilot included.",
            table(
                (
                    "law",
                    "T",
                    "N",
                    "outputs",
                    "max_draws",
                    "method",
                    "pilot estimate",
                    "true expected",
                    "draws",
                    "reason",
                ),
                rows,
            ),
        ]
    )


def _render_value(title: str, value: object, level: int) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        return [f"*{title}*", table(keys, ([v.get(k) for k in keys] for v in value))]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        keys = list(dict.fromkeys(k for v in value.values() for k in v))
        flat = all(not isinstance(v.get(k), list | dict) for v in value.values() for k in keys)
        if flat:  # {row name: {column: scalar}} -> one table
            rows = ([name] + [v.get(k) for k in keys] for name, v in value.items())
            return [f"*{title}*" if title else "", table([""] + keys, rows)]
    if isinstance(value, dict):
        out = [f"*{title}*"] if title else []
        scalars = [(k, v) for k, v in value.items() if not isinstance(v, list | dict)]
        if scalars:
            out.append(table(("", ""), scalars))
        for k, v in value.items():
            if isinstance(v, list | dict):
                out.extend(_render_value(str(k), v, level + 1))
        return out
    return [f"*{title}*: {fmt(value)}"]


def end_to_end_section(res: dict) -> str:
    parts = [
        "## 5. End to end",
        "Each adapter's benchmark module reports its own measurements (tokens or outputs per "
        "second at T = 1, T = 0.5 batch with N = 200 and T = 0.5 exact); they are rendered as "
        "returned. Peak memory is measured here (full run): the module's quick run once more in "
        "a fresh subprocess under `tracemalloc` (Python-heap peak; torch's CPU tensors bypass "
        "it), `torch.cuda.max_memory_allocated` where CUDA exists, and the subprocess's peak "
        "resident set size (`VmHWM`; includes the interpreter and torch, whose peak after the "
        "imports alone is shown for reference).",
    ]
    for name, title in MODULES.items():
        entry = res.get(name, {"status": "not run"})
        parts.append(f"### {title} (`benchmarks/{name}.py`)")
        if entry["status"] != "ok":
            parts.append(entry["status"])
            continue
        result = entry["result"]
        text = result.get("markdown")
        if isinstance(text, str):
            parts.append(text)
        rest = {k: v for k, v in result.items() if k != "markdown"}
        if rest:
            parts.extend(_render_value("", rest, 0))
        memory = entry.get("memory")
        if memory is None:
            parts.append("Peak memory: measured in the full run only.")
        elif "status" in memory:
            parts.append(f"Peak memory: {memory['status']}")
        else:
            parts.append(
                "Peak memory of `run(quick=True)` in a fresh subprocess (MiB): "
                + ", ".join(f"{k} {fmt(v)}" for k, v in memory.items())
            )
        parts.append(f"(section wall time {entry['seconds']:.1f} s)")
    return "\n\n".join(parts)


def figures_section(figures: dict) -> str:
    if not figures:
        return ""
    lines = ["## Figures"]
    for title, path in figures.items():
        lines.append(f"- [{title}]({path})")
    return "\n".join(lines)
