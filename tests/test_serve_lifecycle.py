"""``itemp serve`` as a process (SIGTERM: stop accepting, finish in flight, exit 0) and the
batching queue's cancellation (a client that went away costs no decoding)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from conftest import free_port

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from implicit_temperature.serve.batching import Batcher  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_sigterm_finishes_the_request_in_flight_and_exits_0():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "implicit_temperature", "serve", "calm", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0)
        answer: list = []

        def slow_request() -> None:  # 64 outputs x 40 tokens at T = 0.3: well over a second
            answer.append(
                client.completions.create(
                    model="calm", prompt="cat ", temperature=0.3, max_tokens=40, n=64, seed=0
                )
            )

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.5)  # the request is in flight
        proc.send_signal(signal.SIGTERM)
        t.join(120)
        assert answer and len(answer[0].choices) == 64  # it was finished, not dropped
        assert proc.wait(60) == 0
        with pytest.raises(httpx.ConnectError):  # and nothing listens any more
            httpx.get(base + "/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class RecordingEngine:
    kind = "completions"

    def __init__(self) -> None:
        self.seen: list = []
        self.gate = threading.Event()

    def run_batch(self, works):
        self.gate.wait(10)
        self.seen.append(list(works))
        return [w.name for w in works]


class Work:
    batch_key = ("k",)
    rows = 1

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancelled = threading.Event()


def test_a_cancelled_request_is_never_decoded_and_batches_respect_the_limit():
    engine = RecordingEngine()
    batcher = Batcher(engine, max_batch=3, max_wait_ms=50)

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(Work("first")))
        await asyncio.sleep(0.2)  # the worker holds "first" (gate closed)
        works = [Work(f"w{i}") for i in range(5)]
        tasks = [asyncio.ensure_future(batcher.submit(w)) for w in works]
        await asyncio.sleep(0.05)
        tasks[1].cancel()  # its client went away while it waited
        await asyncio.sleep(0.05)
        engine.gate.set()
        done = await asyncio.gather(first, *tasks, return_exceptions=True)
        return works, done

    works, done = asyncio.run(scenario())
    batcher.stop(5)
    assert works[1].cancelled.is_set()
    assert isinstance(done[2], asyncio.CancelledError)
    decoded = [w.name for batch in engine.seen for w in batch]
    assert "w1" not in decoded and sorted(decoded) == ["first", "w0", "w2", "w3", "w4"]
    assert all(len(batch) <= 3 for batch in engine.seen)
    assert done[0] == "first" and done[1] == "w0" and done[3:] == ["w2", "w3", "w4"]


class TimedEngine:
    """Records batch sizes; each batch takes 50 ms."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def run_batch(self, works):
        self.sizes.append(len(works))
        time.sleep(0.05)
        return [w.name for w in works]


def test_a_wave_of_returning_clients_stays_one_batch():
    """8 clients: after their batch, they send again with a pause longer than max_wait_ms in the
    middle of the wave (as a busy event loop makes it). The batcher waits for the rows of the
    batch that just ended (within its cap, 4 x max_wait_ms = 400 ms), so the wave is one batch
    again, not two halves that would then alternate; a lone client is not held back: it gets
    batches of 1."""
    engine = TimedEngine()
    batcher = Batcher(engine, max_batch=8, max_wait_ms=100)

    async def client(i: int, rounds: int, pause: float) -> None:
        for r in range(rounds):
            if r and i >= 4:  # half the wave comes back after a pause > max_wait_ms
                await asyncio.sleep(pause)
            await batcher.submit(Work(f"c{i}"))

    async def scenario() -> None:
        await asyncio.gather(*(client(i, 3, 0.15) for i in range(8)))

    asyncio.run(scenario())
    assert engine.sizes == [8, 8, 8]  # a window fixed from the first arrival: [8, 4, 4, ...]
    engine.sizes.clear()
    asyncio.run(client(0, 3, 0.0))
    assert engine.sizes == [1, 1, 1]
    batcher.stop(5)


def test_a_client_that_disconnects_mid_stream_stops_its_decoding():
    from implicit_temperature.serve import start_server

    with start_server("calm", max_wait_ms=0) as server:
        engine = server.state.engine
        seen, original = [], engine.run_batch

        def recording(works):
            seen.extend(works)
            return original(works)

        engine.run_batch = recording
        body = {"model": "calm", "prompt": "cat ", "temperature": 0.3, "max_tokens": 400}
        body.update(n=32, seed=0, stream=True)
        with httpx.stream("POST", server.base_url + "/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break  # one chunk arrived; now hang up
        ok = httpx.post(
            server.base_url + "/completions",
            json={"model": "calm", "prompt": "cat ", "max_tokens": 4},
            timeout=60,
        )
        assert ok.status_code == 200  # the server is free again
        assert seen[0].cancelled.is_set()  # the engine's stopping criterion reads this flag
        text = httpx.get(server.url + "/metrics").text
        assert "itemp_cancelled_total 1" in text


def test_cancelled_rows_stop_after_the_current_chunk():
    """The engine's stopping criterion: a cancelled request's rows end at the next chunk."""
    from implicit_temperature.demos.calm import load_demo_model
    from implicit_temperature.serve.engine import CALMEngine, CompletionWork

    model, tok = load_demo_model()
    engine = CALMEngine(model, tok, torch.device("cpu"))

    def work(seed):
        return CompletionWork(
            prompts=[tok.encode("cat ")],
            n=4,
            max_tokens=400,
            temperature=1.0,
            method="auto",
            plan=None,
            num_samples=200,
            max_draws=None,
            stop=(),
            seeds=[seed],
        )

    gone, live = work(0), work(1)
    gone.cancelled.set()
    a, b = engine.run_batch([gone, live])
    # the first chunk after "cat " is a verb (never EOS), so 4 tokens each means "stopped"
    assert [c.tokens for c in a.choices] == [4, 4, 4, 4]
    assert all(c.tokens > 4 for c in b.choices)  # its batch-mate went on


def test_pad_prompts_right_pads_to_whole_chunks():
    from implicit_temperature.serve import start_server
    from implicit_temperature.serve.server import Limits

    with start_server("calm", limits=Limits(pad_prompts="right")) as server:
        r = httpx.post(
            server.base_url + "/completions",
            json={"model": "calm", "prompt": "cat", "max_tokens": 4, "seed": 0},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["prompt_tokens"] == 4  # "cat" + one pad token
