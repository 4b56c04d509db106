"""tolerance=: every result says how far it is from P^(1/T), auto honours the tolerance, and a
result that misses it warns (AccuracyWarning) or raises, at the user's line, never silently."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import PEAKED

import implicit_temperature as it
from implicit_temperature.core.batch_law import batch_tv, batch_tv_against
from implicit_temperature.demos.law_suite import flat_head, suite


def gaussian(m, generator=None):
    return torch.randn(m, generator=generator)


def uniform_million(m, generator=None):
    return torch.randint(0, 1_000_000, (m,), generator=generator)


def categorical(p):
    def draw(m, generator=None):
        return torch.multinomial(p, m, replacement=True, generator=generator)

    return draw


def accuracy_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, it.AccuracyWarning)]


def test_accuracy_warning_is_exported_and_a_temperature_warning():
    assert issubclass(it.AccuracyWarning, it.TemperatureWarning)
    assert issubclass(it.InaccurateResultError, it.ImplicitTemperatureError)


@pytest.mark.parametrize("draw", [gaussian, uniform_million], ids=["randn", "uniform-1e6"])
@pytest.mark.parametrize("temperature", [0.5, 0.3])
def test_all_distinct_draws_finish_at_once_with_batch_and_a_warning(draw, temperature):
    # issue 16: auto planned "exact ~32 draws" from a 16-draw pilot without a repeat, then drew
    # ~1e6 and raised. Now the pilot grows until its collision floor (~M^2/6) rules exact out,
    # batch runs, and the unknown accuracy is said, at this line.
    with pytest.warns(it.AccuracyWarning) as record:
        res = it.temperature_sample(draw, temperature, generator=0)
    assert res.method == "batch" and res.draws <= 1_000 and res.model_calls <= 10
    assert math.isnan(res.estimated_tv) and res.accuracy.upper == 1.0
    (w,) = accuracy_warnings(record)
    assert w.filename == __file__
    msg = str(w.message)
    assert "unknown" in msg and "draws per output" in msg  # what exact would cost at least


def test_on_inaccurate_raise_makes_it_an_error_holding_the_attempt():
    with pytest.raises(it.InaccurateResultError) as info:
        it.temperature_sample(gaussian, 0.5, generator=0, on_inaccurate="raise")
    assert info.value.result.method == "batch"
    assert math.isnan(info.value.result.estimated_tv)


def test_warning_fires_on_a_spread_law_and_stays_silent_on_a_peaked_one():
    # flat-head at T = 0.1 with N = 200: true TV ~0.24 (issue 16's table); peaked-4 at T = 0.5:
    # ~0.002. Same method, same N, 20 outputs each.
    spread_truth = batch_tv(flat_head(), 0.1, 200, pools=512).tv
    assert spread_truth > 0.15
    with pytest.warns(it.AccuracyWarning, match="above tolerance=0.05") as record:
        spread = it.temperature_sample(
            categorical(flat_head()), 0.1, method="batch", num_outputs=20, generator=1
        )
    assert accuracy_warnings(record)[0].filename == __file__
    assert spread.estimated_tv > 0.05 and spread.accuracy.upper >= spread.estimated_tv
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.TemperatureWarning)
        peaked = it.temperature_sample(
            categorical(PEAKED), 0.5, method="batch", num_outputs=20, generator=1
        )
    assert 0 <= peaked.estimated_tv <= 0.05


def test_exact_results_have_zero_estimated_tv():
    res = it.temperature_sample(categorical(PEAKED), 0.5, method="exact", num_outputs=5)
    assert res.estimated_tv == 0.0 and res.accuracy.meets and res.accuracy.upper == 0.0


def test_auto_raises_n_to_reach_the_tolerance_within_its_budget():
    # flat-head at T = 0.1: the default N = 200 is far off (TV ~0.24); exact costs ~4e4 per
    # output. With 10,000 draws per output auto re-plans from the batch attempt's pools and runs
    # a larger N, which meets the tolerance for real; within the default budget (10 x 200 per
    # output) nothing reaches it, and auto says so and what it would cost.
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.AccuracyWarning)
        res = it.temperature_sample(
            categorical(flat_head()), 0.1, num_outputs=20, max_draws=200_000, generator=2
        )
    n = res.extra["num_samples"]
    # N is chosen from the grown pilot or, after an attempt that missed, from its pools
    assert res.method == "batch" and n > 200 and "estimated to meet" in res.reason
    assert res.draws <= 200_000
    rule = res.extra["estimator"]  # the weights auto chose with N (binomial or jackknife)
    assert batch_tv_against(flat_head(), 0.1, n, 0.05, estimator=rule).tv <= 0.05
    with pytest.warns(it.AccuracyWarning, match="reaching it would take batch with N") as record:
        small = it.temperature_sample(categorical(flat_head()), 0.1, num_outputs=20, generator=2)
    assert small.draws_per_output <= it.core.api.AUTO_BUDGET_FACTOR * 200
    assert accuracy_warnings(record)[0].filename == __file__


def test_batched_problems_warn_once_and_report_each_problem():
    # problem 0: peaked-4 (padded with impossible outcomes), problem 1: flat-head's first 1000
    peaked = torch.cat([PEAKED, torch.zeros(996, dtype=torch.float64)])
    laws = torch.stack([peaked, flat_head()[:1000] / flat_head()[:1000].sum()])

    def draw(m, generator=None):
        return torch.multinomial(laws, m, replacement=True, generator=generator)

    with pytest.warns(it.AccuracyWarning, match="1 of 2 problems") as record:
        res = it.temperature_sample(
            draw, 0.1, method="batch", batched=True, num_outputs=10, generator=0
        )
    assert len(accuracy_warnings(record)) == 1
    per = res.accuracy.per_problem
    assert per.shape == (2,) and float(per[0]) <= 0.05 < float(per[1])


def test_estimate_runs_only_a_pilot_and_reports_each_method():
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        return torch.multinomial(flat_head(), m, replacement=True, generator=generator)

    est = it.estimate(draw, 0.1, num_outputs=10, generator=0)
    assert sum(calls) == 200  # num_samples draws, nothing else
    exact = [m for m in est.methods if m.method == "exact"]
    batch = [m for m in est.methods if m.method == "batch"]
    assert len(exact) == 1 and exact[0].estimated_tv == 0.0 and exact[0].draws_per_output > 1e3
    assert [m.num_samples for m in batch][:2] == [200, 400]
    assert batch[0].estimated_tv > 0.05  # N = 200 is visibly off here (truth ~0.24)
    assert "draws/output" in str(est)


def test_tolerance_is_validated():
    with pytest.raises(it.core.InvalidOptionError, match="tolerance"):
        it.temperature_sample(gaussian, 0.5, tolerance=0.0)
    with pytest.raises(it.core.OptionTypeError, match="tolerance"):
        it.temperature_sample(gaussian, 0.5, tolerance="tight")


def test_calm_generate_warns_once_per_call_at_the_callers_line():
    from conftest import tiny_calm_config

    from implicit_temperature.adapters.calm import generate
    from implicit_temperature.demos.calm import CALM

    torch.manual_seed(0)
    model = CALM(tiny_calm_config()).eval()
    ids = torch.randint(0, 30, (2, 8))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = generate(
            model,
            ids,
            temperature=0.25,
            method="batch",
            num_samples=50,
            max_new_tokens=12,
            generator=0,
            return_dict_in_generate=True,
        )
    caught = accuracy_warnings(record)
    assert len(out.accuracies) == out.steps == 3
    assert len(caught) <= 1  # aggregated per generate() call, never one per step
    if caught:
        (w,) = caught
        assert w.filename == __file__  # not torch/utils/_contextlib.py
        msg = str(w.message)
        assert "decoding steps" in msg and "chunk itself" in msg and "quantizer (" not in msg
    else:
        assert max(out.estimated_tv) <= 0.05


def test_diffusers_one_liner_returns_at_once_and_warns():
    """with_temperature(pipe)(temperature=0.5, num_images_per_prompt=4) on a random 8x8 DDPM UNet
    with the default image hash ran > 15 minutes (issue 16): every image hash is distinct, the
    pilot said "exact, cheap" and the exact run never ended. Now the pilot's missing collisions
    rule exact out, batch runs with a pool as small as the pilot, and the call warns. The draws
    and pipeline calls are bounded, so the time depends on the denoising steps only (20 here);
    wall time is not asserted (it is the machine's, not the library's)."""
    pytest.importorskip("diffusers")
    from conftest import tiny_unet
    from diffusers import DDPMPipeline, DDPMScheduler

    from implicit_temperature.adapters.diffusion import with_temperature

    unet = tiny_unet()
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler())
    tpipe = with_temperature(pipe, num_inference_steps=20)
    with pytest.warns(it.AccuracyWarning) as record:
        out = tpipe(temperature=0.5, num_images_per_prompt=4)
    assert len(out.images) == 4
    (res,) = tpipe.last_results
    assert res.method == "batch" and res.draws <= 300 and res.model_calls <= 20
    assert accuracy_warnings(record)[0].filename == __file__


@pytest.mark.slow
def test_suite_default_is_honest_and_tolerance_is_met_cheaply():
    """The 12-law suite (6 spread) at T in {0.5, 0.25, 0.1}, 20 outputs per call, fixed seeds:

    * default call: true TV <= 0.05 or an AccuracyWarning, in 100% of the 36 cases;
    * tolerance=0.02 with a large budget: true TV <= 0.02 in >= 95% of the cases.
    True TVs are simulated with P known, each until it is clearly on one side of its threshold
    (0.05 or 0.02) or within threshold / 8 of it (batch_tv_against, 512 to 16,384 pools; a
    fixed 256 pools was off by up to 0.03 near 0.02 and misjudged several cases). The cost
    against the cheapest library method meeting 0.02 (exact, binomial or jackknifed batch at the
    smallest N of a sqrt(2) ladder, bench_tolerance.cheapest, judged the same way) is measured
    and reported by the benchmark (bench_tolerance.suite_verdict), not asserted: it is within
    1.5x in 11 of 36 cases at the last run (ratios 0.87 - 20; the cheapest is mostly the
    jackknifed rule, which auto does not choose on its estimate). The benchmark also reruns
    every case with 2 more seeds (bench_tolerance.suite_reruns; 107 of 108 honest, 108 of 108
    met at the last run)."""
    from benchmarks.bench_tolerance import suite_table

    rows = suite_table(quick=False)
    assert len(rows) == 3 * len(suite()) == 36
    dishonest = [r for r in rows if r["default"]["truth"] > 0.05 and not r["default"]["warned"]]
    assert not dishonest, dishonest
    met = [r for r in rows if r["tight"]["truth"] <= 0.02]
    assert len(met) >= 0.95 * len(rows), [r for r in rows if r not in met]


def test_num_samples_auto_chooses_n_from_a_pilot_to_meet_the_tolerance():
    # flat-head at T = 0.25: N = 200 is off (true TV ~0.03 > 0.02); method="batch" with
    # num_samples="auto" draws a pilot, picks N (and the weights) from it, never runs exact,
    # and what it returns meets the tolerance for real (P known, simulated until the TV is
    # clearly on one side of 0.02 or within 0.0025 of it: batch_tv_against).
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        return torch.multinomial(flat_head(), m, replacement=True, generator=generator)

    with warnings.catch_warnings():
        warnings.simplefilter("error", it.AccuracyWarning)
        res = it.temperature_sample(
            draw,
            0.25,
            method="batch",
            num_samples="auto",
            tolerance=0.02,
            num_outputs=20,
            max_draws=200_000,
            generator=4,
        )
    n, rule = res.extra["num_samples"], res.extra["estimator"]
    assert res.method == "batch" and res.pilot_draws > 0 and n != 200
    assert res.draws == sum(calls) <= 200_000
    assert batch_tv_against(flat_head(), 0.25, n, 0.02, estimator=rule).tv <= 0.02


@pytest.mark.parametrize(
    ("value", "error"),
    [("many", "InvalidOptionError"), (0, "InvalidOptionError"), (2.5, "OptionTypeError")],
)
def test_num_samples_accepts_an_int_or_auto_only(value, error):
    with pytest.raises(getattr(it.core, error), match="num_samples must be .*'auto'"):
        it.temperature_sample(gaussian, 0.5, num_samples=value)


def test_cli_takes_num_samples_auto(tmp_path):
    import argparse

    from implicit_temperature.jobs.args import add_arguments
    from implicit_temperature.jobs.spec import JobError, JobSpec

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["categorical", "--num-problems", "1", "--out", str(tmp_path)]
    args = parser.parse_args([*base, "--num-samples", "auto"])
    assert args.num_samples == "auto"
    spec = JobSpec(model="categorical", problems=1, out=str(tmp_path), num_samples="auto")
    assert spec.num_samples == "auto"
    with pytest.raises(JobError, match="num_samples"):
        JobSpec(model="categorical", problems=1, out=str(tmp_path), num_samples="lots")
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--num-samples", "lots"])


def test_dry_run_runs_only_the_pilot_and_returns_the_estimate():
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        return torch.multinomial(flat_head(), m, replacement=True, generator=generator)

    est = it.temperature_sample(draw, 0.1, num_outputs=10, generator=0, dry_run=True)
    assert isinstance(est, it.core.Estimate)
    assert sum(calls) == 200  # the pilot, nothing sampled
    rules = {m.estimator for m in est.methods if m.method == "batch"}
    assert rules == {"binomial"}  # the rule auto may choose (the jackknife only when asked)
    assert est.decision in ("exact", "batch") and est.reason
    asked = it.estimate(draw, 0.1, num_outputs=10, generator=0, estimator="jackknife")
    assert {m.estimator for m in asked.methods if m.method == "batch"} == {"jackknife"}
    same = it.estimate(draw, 0.1, num_outputs=10, generator=0)
    assert [m.estimated_tv for m in same.methods] == [m.estimated_tv for m in est.methods]


def test_a_default_call_stops_at_a_small_multiple_of_its_plans_estimate():
    """The pilot sees a peaked law (the first draw call), the run a spread one: auto commits to
    exact from a cheap estimate, and the run is stopped at RUNAWAY_FACTOR x that estimate (plus
    RUNAWAY_SLACK), with an error that says so, never a silent runaway to the 1e6 default."""
    from implicit_temperature.core import api

    spread = torch.full((5000,), 1 / 5000, dtype=torch.float64)
    calls = []

    def draw(m, generator=None):
        law = spread if calls else PEAKED
        calls.append(m)
        return torch.multinomial(law, m, replacement=True, generator=generator)

    with pytest.raises(it.DrawBudgetExceeded, match="committed to it") as info:
        it.temperature_sample(draw, 0.25, num_outputs=20, generator=0)
    assert "5x the plan's estimate" in str(info.value)
    exact_estimate = it.expected_exact_draws(PEAKED, 0.25) * 20  # ~410: what the pilot saw
    limit = calls[0] + api.RUNAWAY_FACTOR * 3 * exact_estimate + api.RUNAWAY_SLACK
    assert info.value.stats["draws"] <= limit < 1e4


def test_auto_does_not_choose_the_jackknife_whose_estimate_runs_low():
    """On the flat head at T = 0.1 the jackknifed rule's error estimate is a fraction of its true
    TV, so auto choosing it on that estimate returned TV ~0.06 without a warning; auto keeps to
    the binomial rule (whose estimate this suite checks) unless the jackknife is asked for."""
    res = it.temperature_sample(
        categorical(flat_head()), 0.1, num_outputs=20, max_draws=200_000, generator=3
    )
    assert res.method == "batch" and res.extra["estimator"] == "binomial"
    asked = it.temperature_sample(
        categorical(flat_head()),
        0.1,
        num_outputs=20,
        max_draws=200_000,
        generator=3,
        estimator="jackknife",
    )
    assert asked.extra["estimator"] == "jackknife"


def test_estimate_accuracy_false_skips_the_estimate_without_changing_the_outputs():
    # The same spread-law call as above (true TV ~0.24, warns by default): with
    # estimate_accuracy=False the outputs are the same draws and picks (the estimate draws from
    # its own generator), the record says "not estimated", and nothing warns.
    draw = categorical(flat_head())
    kw = dict(method="batch", num_outputs=20, generator=1)
    with pytest.warns(it.AccuracyWarning):
        estimated = it.temperature_sample(draw, 0.1, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.TemperatureWarning)
        skipped = it.temperature_sample(draw, 0.1, estimate_accuracy=False, **kw)
    assert torch.equal(skipped.samples, estimated.samples)
    assert skipped.draws == estimated.draws
    assert not skipped.accuracy.estimated and estimated.accuracy.estimated
    assert math.isnan(skipped.estimated_tv) and skipped.accuracy.upper == 1.0
    assert "not estimated" in skipped.accuracy.how


@pytest.mark.parametrize("kw", [dict(method="auto"), dict(method="batch", num_samples="auto")])
def test_estimate_accuracy_false_is_refused_where_the_estimate_decides(kw):
    with pytest.raises(
        it.InvalidArgumentError, match="estimate_accuracy=False needs method='batch'"
    ):
        it.temperature_sample(categorical(PEAKED), 0.5, estimate_accuracy=False, **kw)


def test_calm_generate_without_the_estimate_decodes_the_same_chunks_silently():
    from conftest import tiny_calm_config

    from implicit_temperature.adapters.calm import generate
    from implicit_temperature.demos.calm import CALM

    torch.manual_seed(0)
    model = CALM(tiny_calm_config()).eval()
    ids = torch.randint(0, 30, (2, 8))
    kw = dict(temperature=0.25, method="batch", num_samples=50, max_new_tokens=12, generator=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", it.AccuracyWarning)
        estimated = generate(model, ids, return_dict_in_generate=True, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.AccuracyWarning)
        skipped = generate(model, ids, estimate_accuracy=False, return_dict_in_generate=True, **kw)
    assert torch.equal(skipped.sequences, estimated.sequences)
    assert all(not a.estimated for a in skipped.accuracies)


@pytest.mark.parametrize("per_row", [False, True])
def test_auto_re_plans_again_when_a_re_planned_run_still_misses(monkeypatch, per_row):
    """zipf-30 at T = 0.1, tolerance=0.02: a first attempt misses 0.7 x 0.02 and its re-planned
    run's estimate misses 0.02 itself, so with a single re-plan the call warned (one stream,
    seed 1112, a case the suite's 3-seed rerun found: N = 50, estimate 0.031, then N = 71,
    estimate 0.09, true TV 0.025; per problem, seed 1105: 0.07). Auto now re-plans from that
    run's pools too (AUTO_REPLANS times at most): the result meets the tolerance without a
    warning, within the budget, and for real (P known, batch_tv_against)."""
    from implicit_temperature.core import api, row_runs

    law = next(law for law in suite() if law.name == "zipf-30")
    p = law.probs.float()

    def rows_draw(m, generator=None):  # batched, one generator per problem
        return torch.stack([torch.multinomial(p, m, True, generator=g) for g in generator])

    draw, gen, kw = law.draw(), 1112, dict(num_outputs=20, tolerance=0.02, max_draws=4_000_000)
    if per_row:
        draw, gen, kw = rows_draw, [1105], kw | dict(batched=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.AccuracyWarning)
        res = it.temperature_sample(draw, 0.1, generator=gen, **kw)
    assert res.method == "batch" and res.estimated_tv <= 0.02
    assert res.draws <= kw["max_draws"]
    if not per_row:
        attempts = res.extra["attempts"]
        assert len(attempts) == 2 and "N = 71" in attempts[1], attempts
        n = res.extra["num_samples"]
        truth = batch_tv_against(law.probs, 0.1, n, 0.02)
        assert truth.tv + 2 * truth.error <= 0.02, (n, truth)
    # with one re-plan only, as before, the same call ends on the missed run and warns
    monkeypatch.setattr(row_runs if per_row else api, "AUTO_REPLANS", 1)
    with pytest.warns(it.AccuracyWarning, match="above tolerance=0.02"):
        once = it.temperature_sample(draw, 0.1, generator=gen, **kw)
    assert once.estimated_tv > 0.02
