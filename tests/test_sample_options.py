"""SampleOptions is the one list of sampling keywords: every entry point takes exactly its fields,
with its defaults, and one set of validators checks them."""

import argparse
import inspect

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.core.errors import ImplicitTemperatureError
from implicit_temperature.core.options import (
    SAMPLE_KEYWORDS,
    SampleOptions,
    cli_options,
    optional_positive_int,
    positive_int,
)
from implicit_temperature.jobs.args import add_arguments


def _keywords(fn, skip=()):
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name not in skip}


def test_temperature_sample_and_sampler_take_every_option_with_its_default():
    defaults = SampleOptions.defaults()
    core = _keywords(
        it.temperature_sample, skip=("key", "batched", "key_name", "advice", "options")
    )
    assert core == defaults
    assert _keywords(it.TemperatureSampler.sample) == defaults
    assert SAMPLE_KEYWORDS == {"temperature", *defaults}


def test_calm_generate_takes_every_per_step_option():
    from implicit_temperature.adapters.calm import generate

    kw = _keywords(generate)
    for name, default in SampleOptions.defaults().items():
        if name != "num_outputs":  # one chunk per step
            assert kw[name] == default, name


def test_cli_sample_flags_come_from_the_options():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {o.flag for o in cli_options()} <= flags
    args = parser.parse_args(["m", "--out", "x", "--num-problems", "1", "--plan", "4"])
    assert args.plan == "4"  # always text: the tree "4", never the integer 4
    assert args.num_samples == SampleOptions().num_samples and args.method == "auto"


@pytest.mark.parametrize("check", [positive_int, optional_positive_int])
def test_one_validator_with_library_error_types(check):
    with pytest.raises(TypeError) as info:
        check("n", 2.5)
    assert isinstance(info.value, ImplicitTemperatureError)
    with pytest.raises(ValueError) as info:
        check("n", 0)
    assert isinstance(info.value, ImplicitTemperatureError) and "n must be >= 1" in str(info.value)
    assert check("n", 3) == 3
    assert optional_positive_int("n", None) is None


def test_options_are_frozen_and_checked_on_construction():
    opts = SampleOptions(num_samples=50, method="batch")
    with pytest.raises(AttributeError):
        opts.num_samples = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="method must be one of.*did you mean 'exact'"):
        SampleOptions(method="exakt")
    with pytest.raises(TypeError, match="plan must be"):
        SampleOptions(plan=4)


def test_unknown_keyword_names_the_closest_option():
    def draw(m, generator=None):
        return torch.zeros(m, dtype=torch.long)

    with pytest.raises(it.UnknownOptionError, match="did you mean 'num_samples'"):
        it.temperature_sample(draw, 0.5, num_sample=10)


def test_an_options_object_and_keywords_combine():
    def draw(m, generator=None):
        return torch.multinomial(torch.tensor([0.7, 0.3]), m, replacement=True, generator=generator)

    opts = SampleOptions(method="batch", num_samples=20, num_outputs=3, generator=0)
    a = it.temperature_sample(draw, 0.5, options=opts)
    b = it.temperature_sample(draw, 0.5, options=opts, num_outputs=5)
    assert a.method == "batch" and a.draws == 60 and b.draws == 100
    c = it.temperature_sample(draw, 0.5, method="batch", num_samples=20, num_outputs=3, generator=0)
    assert torch.equal(a.keys, c.keys)


def test_is_positive_int_is_the_test_behind_positive_int():
    from implicit_temperature.core.options import is_positive_int

    for good in (1, 7, 2**70):
        assert is_positive_int(good) and positive_int("n", good) == good
    for bad in (0, -3, 2.0, 2.5, True, False, "3", None):
        assert not is_positive_int(bad)
        with pytest.raises(ImplicitTemperatureError, match="n must be"):
            positive_int("n", bad)
