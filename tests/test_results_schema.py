"""One results schema for every model: the JSON Schema shipped with the package validates the
lines that every demo model (and a plugin whose samples are strings) writes, and a job records
the plan the exact method actually ran."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch

import implicit_temperature
from implicit_temperature.jobs import run_job

SCHEMA_PATH = Path(implicit_temperature.__file__).parent / "jobs" / "results.schema.json"
PROMPTS = Path(implicit_temperature.__file__).parent / "demos" / "calm" / "prompts.jsonl"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def lines(summary) -> list[dict]:
    return [json.loads(line) for line in summary.results.read_text().splitlines()]


def check(validator, records):
    for r in records:
        errors = sorted(validator.iter_errors(r), key=str)
        assert not errors, f"{r['id']} T={r['temperature']}: {errors[0].message}"


# every demo model at T = 1 (no diagnostics), T < 1 (exact) and T > 1 (batch)
DEMOS = {
    "calm": dict(problems=str(PROMPTS), max_new_tokens=8, num_samples=32),
    "ddpm": dict(problems=2, num_samples=32),
    "flow": dict(problems=2, num_samples=32),
    "digits": dict(problems=1, num_samples=16, adapter_options={"num_inference_steps": 2}),
}


@pytest.mark.parametrize("model", sorted(DEMOS))
def test_every_demo_model_writes_lines_the_schema_accepts(tmp_path, validator, model):
    temps = (0.5, 1.0, 2.0) if model != "digits" else (1.0, 2.0)
    summary = run_job(
        model=model,
        out=str(tmp_path / model),
        temperatures=temps,
        num_outputs=2,
        progress=False,
        seed=3,
        **DEMOS[model],
    )
    records = lines(summary)
    check(validator, records)
    assert {r["temperature"] for r in records} == set(temps)
    for r in records:
        assert r["method_used"] is not None and r["plan"], "never null, one shape"
        if r["temperature"] == 1.0:
            assert "exact" in r["method_used"]
    if model == "calm":
        assert all(len(r["plan"]) == r["stats"]["steps"] for r in records), "a plan per step"
        assert all("finish_reason" in o for r in records for o in r["outputs"])


def test_the_schema_refuses_the_old_shapes(validator):
    good = {
        "id": "0",
        "temperature": 0.5,
        "job": "0123456789abcdef",
        "method": "auto",
        "method_used": "exact",
        "plan": ["2"],
        "seed": 1,
        "num_outputs": 1,
        "outputs": [{"key": 3}],
        "draws": 4,
        "diagnostics": None,
        "stats": {},
    }
    assert validator.is_valid(good)
    for bad in (
        {"plan": None},  # null plan of a non-CALM job
        {"method_used": None},  # T = 1 used to write null
        {"outputs": ["images/0/T0.5-0.png"]},  # bare strings
        {"diagnostics": {"distinct_keys": 3}},  # the generic adapter's int
        {"temperature": "0.5"},
    ):
        assert not validator.is_valid({**good, **bad}), bad


def test_ddpm_exact_job_records_the_plan_it_ran(tmp_path, validator):
    """``itemp sample ddpm -t 0.25 --method exact``: the line names the collision tree the
    planner chose (a string whose leaves add up to 1/T = 4), not the null that was asked for."""
    from implicit_temperature.core.plan import parse_tree

    summary = run_job(
        model="ddpm",
        problems=1,
        out=str(tmp_path / "d"),
        temperatures=(0.25,),
        method="exact",
        num_outputs=4,
        progress=False,
    )
    (record,) = lines(summary)
    check(validator, [record])
    (plan,) = record["plan"]
    assert isinstance(plan, str) and record["method_used"] == "exact"
    assert parse_tree(plan).s == pytest.approx(4.0), plan


def test_string_samples_are_written_through_the_adapter_hook(tmp_path, validator, monkeypatch):
    """A plugin whose samples are strings: its ``sample_to_json`` puts each sample in the line
    (it used to get only ``{"key": 7}``)."""
    import sys
    import types

    from implicit_temperature.plugins import Adapter

    words = ["cat", "dog", "owl"]

    class Words:
        pass

    class WordAdapter(Adapter):
        name = "words-test"

        @classmethod
        def handles(cls, model):
            return isinstance(model, Words)

        def draw(self, n, generator=None):
            idx = torch.randint(0, 3, (n,), generator=generator)
            return [words[i] for i in idx.tolist()]

        def quantize(self, samples):
            return torch.tensor([words.index(s) for s in samples])

        def sample_to_json(self, sample):
            return sample

    from implicit_temperature.jobs import sampling
    from implicit_temperature.plugins import TemperatureSampler

    mod = types.ModuleType("words_test_plugin")
    mod.make = lambda: Words()
    monkeypatch.setitem(sys.modules, "words_test_plugin", mod)
    monkeypatch.setattr("implicit_temperature.jobs.models._module_available", lambda name: True)
    # the adapter class given directly (as a plugin would register it by name)
    monkeypatch.setattr(
        sampling.AdapterRunner,
        "_sampler",
        lambda self, problem: TemperatureSampler(self.model, WordAdapter),
    )
    summary = run_job(
        model="words_test_plugin:make",
        problems=1,
        out=str(tmp_path / "w"),
        temperatures=(0.5,),
        method="batch",
        num_outputs=3,
        progress=False,
    )
    (record,) = lines(summary)
    check(validator, [record])
    assert [o["sample"] for o in record["outputs"]] == [words[o["key"]] for o in record["outputs"]]


def test_the_scaling_doc_example_line_is_what_its_command_writes(tmp_path, validator):
    """docs/scaling.md shows the first line its own command writes. Rerun on that first problem
    and temperature alone: every field is the same but the job fingerprint (another problems
    file, so another job)."""
    import shlex

    from implicit_temperature import cli
    from implicit_temperature.jobs.args import spec_kwargs

    doc = (Path(__file__).parents[1] / "docs" / "scaling.md").read_text()
    section = doc.split("## One process")[1]
    argv = shlex.split(section.split("```bash")[1].split("```")[0].replace("\\\n", " "))
    shown = json.loads(section.split("```json")[1].split("```")[0])
    check(validator, [shown])
    args = cli.build_parser().parse_args(argv[1:])
    args.argv = argv[1:]
    kwargs = spec_kwargs(args)
    one = tmp_path / "one.jsonl"
    repo = Path(__file__).parents[1]
    one.write_text((repo / kwargs["problems"]).read_text().splitlines()[0] + "\n")
    kwargs.update(problems=str(one), out=str(tmp_path / "o"), progress=False, temperatures=(0.5,))
    assert shown["temperature"] == 0.5
    (mine,) = lines(run_job(**kwargs))
    assert mine.pop("job") != shown.pop("job")
    assert mine == shown
