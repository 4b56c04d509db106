"""The core's own figures are typed fields of TemperatureResult, never keys of ``extra``."""

import torch

import implicit_temperature as it
from implicit_temperature.core.plan import parse_tree


def _draw(m, generator=None):
    probs = torch.tensor([0.5, 0.3, 0.2])
    return torch.multinomial(probs, m, replacement=True, generator=generator)


def test_exact_result_records_the_plan_used_as_a_tree_string():
    res = it.temperature_sample(_draw, 0.25, method="exact", num_outputs=20, generator=0)
    assert isinstance(res.plan, str) and parse_tree(res.plan).s == 4.0
    assert res.pilot_draws > 0 and res.expected_draws is not None and res.batched is False
    assert not {"plan", "pilot_draws", "batched", "expected_draws"} & set(res.extra)


def test_explicit_plan_has_no_pilot_and_batch_has_no_plan():
    res = it.temperature_sample(_draw, 0.5, method="exact", plan="2", num_outputs=5, generator=0)
    assert res.plan == "2" and res.pilot_draws == 0
    res = it.temperature_sample(_draw, 0.5, method="batch", num_outputs=5, generator=0)
    assert res.plan is None and res.pilot_draws == 0 and res.method == "batch"


def test_auto_choosing_batch_keeps_its_pilot_count_but_no_plan():
    # 1/T = 20 on a law of 3 outcomes with a budget that only batch fits after the pilot
    res = it.temperature_sample(_draw, 0.05, num_samples=50, num_outputs=100, generator=0)
    assert res.method == "batch" and res.plan is None
    # auto may raise N to meet its tolerance (a first batch attempt then counts as pilot): the
    # draws are the pilot's plus N of the final run per output, whatever N it chose
    n = res.extra["num_samples"]
    assert n >= 50 and res.draws == res.pilot_draws + n * 100


def test_batched_is_a_field():
    def draw(m, generator=None):
        return torch.stack([_draw(m, generator), _draw(m, generator)])

    res = it.temperature_sample(draw, 0.5, batched=True, num_outputs=4, generator=0)
    assert res.batched is True and res.keys.shape == (2, 4)
    assert res.draws_per_output == res.draws / 8
