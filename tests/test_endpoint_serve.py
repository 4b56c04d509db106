"""The endpoint adapter against ``itemp serve answers`` (the shipped answers model over real
HTTP on loopback): the answer law at T = 0.5 and 0.25 (exact) against P(answer)^(1/T) with P
from a large T = 1 pool; batch at tiny T returns the pool's majority; an answer job interrupted
twice (SIGKILL, then a connection failure) resumes byte-identical with zero repeated requests
on the server's own request counter."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest
import torch
from conftest import chi_square_pvalue

import implicit_temperature as it
from implicit_temperature.adapters.endpoint import Endpoint

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

PROMPT = "3+4="
POOL = 6000


@pytest.fixture(scope="module")
def server():
    from implicit_temperature.serve import start_server

    with start_server("answers") as handle:
        yield handle


def completions_served(server) -> int:
    import httpx

    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics").text
    pattern = r'itemp_requests_total\{endpoint="/v1/completions",status="200"\} (\d+)'
    return sum(int(x) for x in re.findall(pattern, text))


def answers_sampler(server, **options):
    return it.TemperatureSampler(
        Endpoint(server.base_url, model="answers"),
        prompt=PROMPT,
        max_tokens=8,
        n_per_request=64,
        **options,
    )


@pytest.fixture(scope="module")
def pool_law(server):
    """P(answer) for the prompt, from POOL completions at T = 1 (seeded requests)."""
    s = answers_sampler(server, store=False, stream="pool")
    texts = s.adapter.draw(POOL)
    counts = Counter(s.adapter.answer_of(t) for t in texts)
    return {a: c / POOL for a, c in counts.items()}


@pytest.mark.parametrize(("t", "outputs", "seed"), [(0.5, 500, 1), (0.25, 300, 2)])
def test_exact_answer_law_matches_the_pool_tempered(server, pool_law, tmp_path, t, outputs, seed):
    res = answers_sampler(server, store=tmp_path).sample(
        t, method="exact", num_outputs=outputs, generator=seed
    )
    adapter_answers = [res.samples[i] for i in range(outputs)]
    quant = it.quantizers.FinalNumber()
    answers = [quant.extract(x) for x in adapter_answers]
    order = sorted(pool_law, key=lambda a: -pool_law[a])
    weights = torch.tensor([pool_law[a] ** (1 / t) for a in order], dtype=torch.float64)
    target = weights / weights.sum()
    unseen = [a for a in answers if a not in pool_law]
    assert len(unseen) <= 2  # answers the pool never saw have tiny tempered mass
    ids = torch.tensor([order.index(a) for a in answers if a in pool_law])
    assert chi_square_pvalue(ids, target) > 1e-3
    assert res.extra["adapter"]["completions"] == res.draws


def test_batch_at_tiny_temperature_returns_the_pool_majority(server, pool_law, tmp_path):
    majority = max(pool_law, key=pool_law.get)
    s = answers_sampler(server, store=tmp_path)
    res = s.sample(0.01, method="batch", num_samples=200, num_outputs=3, generator=0)
    assert [s.adapter.answer_of(x) for x in res.samples] == [majority] * 3


DRIVER = r"""
import os, signal, sys
import httpx
mode, k, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
count = [0]
if mode == "kill":  # SIGKILL right after the k-th response is on disk
    from implicit_temperature.adapters.endpoint import store
    append = store.DrawLog.append
    def killing_append(self, record):
        append(self, record)
        count[0] += 1
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
    store.DrawLog.append = killing_append
elif mode == "net":  # the network goes away after k requests
    handle = httpx.HTTPTransport.handle_request
    def failing(self, request):
        if request.method == "POST":
            count[0] += 1
            if count[0] > k:
                raise httpx.ConnectError("simulated connection failure", request=request)
        return handle(self, request)
    httpx.HTTPTransport.handle_request = failing
from implicit_temperature.cli import main
sys.exit(main(args))
"""


def test_interrupted_answer_job_resumes_identically_without_repeated_requests(server, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(f'{{"id": "q{a}{b}", "prompt": "{a}+{b}="}}\n' for a, b in [(3, 4), (5, 5)])
    )
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)

    def job(out, mode="plain", k=0):
        args = [
            "sample",
            f"endpoint:{server.base_url}",
            "--problems",
            str(questions),
            "--quantizer",
            "final_number",
            "-t",
            "0.5",
            "0.25",
            "--method",
            "exact",
            "--num-outputs",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "-o",
            "model_name=answers",
            "-o",
            "max_tokens=8",
            "-o",
            "n_per_request=4",
            "-o",
            "max_concurrency=1",
            "-o",
            "max_retries=1",
            "-o",
            "backoff=0.01",
        ]
        return subprocess.run(
            [sys.executable, str(driver), mode, str(k), *args], capture_output=True, text=True
        )

    start = completions_served(server)
    ref = job(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    needed = completions_served(server) - start
    assert needed > 12  # enough requests for two interruptions

    before = completions_served(server)
    killed = job(tmp_path / "run", "kill", 5)
    assert killed.returncode == -9
    assert completions_served(server) - before == 5  # killed right after the 5th was stored
    dropped = job(tmp_path / "run", "net", 4)
    assert dropped.returncode != 0 and "resume" in dropped.stderr, dropped.stderr
    assert completions_served(server) - before == 9  # 4 more, then the network went away
    assert "Traceback" not in dropped.stderr
    done = job(tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert completions_served(server) - before == needed  # zero repeated requests
    ref_bytes = (tmp_path / "ref" / "results.jsonl").read_bytes()
    assert (tmp_path / "run" / "results.jsonl").read_bytes() == ref_bytes


def test_demo_answers_writes_its_figure(tmp_path, capsys):
    from implicit_temperature.cli import main

    out = tmp_path / "answers.png"
    args = ["demo", "answers", "--questions", "2", "--outputs", "2", "--pool", "8"]
    assert main([*args, "--out", str(out)]) == 0
    assert out.is_file()
    text = capsys.readouterr().out
    assert "->0" in text and "majority of" in text


def test_endpoint_model_names_are_checked(tmp_path, capsys):
    from implicit_temperature.cli import main

    code = main(
        ["sample", "endpoint:localhost:8000", "--num-problems", "1", "--out", str(tmp_path / "o")]
    )
    assert code != 0
    assert "endpoint:URL" in capsys.readouterr().err
