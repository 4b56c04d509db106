"""Load on ``itemp serve``: 1, 8 and 32 concurrent clients against one client one-at-a-time.

The server (``itemp serve calm``, the shipped demo CALM, default dynamic batching: up to 32
rows, a 10 ms quiet window) runs as a subprocess on a free 127.0.0.1 port; clients are threads
of this process, each with its own keep-alive ``httpx`` connection, sending ``/v1/completions``
requests (prompt "cat ", ``max_tokens`` 16, one output, method auto, exact or batch; with or
without a seed per request) and nothing to any other address.
Every setting sends the same number of requests; a setting's figures are requests/s and
generated tokens/s over its wall time, and p50/p99 latency per request. Ratios are against
the one-client row of the same run. A failed request (any status but 200) is counted, never
dropped. Bounded: 96 requests per setting (32 with --quick), a 120 s cap per request.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from .launch import free_port

CLIENTS = (1, 8, 32)
#: (temperature, seeded, method): unseeded requests with equal settings share one core call per
#: step; seeded ones keep one stream per row and still share one core call per step (per-row
#: generators: each row's lanes sized, and with "auto" its pilot and plan made, from its own
#: state; a pilot, then exact at T = 0.5 here); see serve/engine.py.
SETTINGS = (
    (1.0, False, "auto"),
    (0.5, False, "auto"),
    (0.5, True, "auto"),
    (0.5, True, "exact"),
    (0.5, True, "batch"),
)
ROOT = Path(__file__).resolve().parent.parent


def _start(port: int) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "implicit_temperature", "serve", "calm", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("itemp serve did not start within 120 s")


def _load(
    url: str, clients: int, requests: int, temperature: float, seeded: bool, method: str = "auto"
) -> dict:
    """``requests`` requests spread over ``clients`` threads; figures of the whole run."""
    import httpx

    latencies: list[float] = []
    tokens = [0]
    failed = [0]
    lock = threading.Lock()
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(index: int, count: int) -> None:
        with httpx.Client(timeout=120) as http:
            barrier.wait()
            for k in range(count):
                body = {
                    "model": "calm",
                    "prompt": "cat ",
                    "max_tokens": 16,
                    "temperature": temperature,
                    "method": method,
                }
                if seeded:
                    body["seed"] = index * 1000 + k
                start = time.perf_counter()
                try:
                    r = http.post(url + "/v1/completions", json=body)
                    ok = r.status_code == 200
                    n = r.json()["usage"]["completion_tokens"] if ok else 0
                except httpx.HTTPError:
                    ok, n = False, 0
                with lock:
                    latencies.append(time.perf_counter() - start)
                    tokens[0] += n
                    failed[0] += not ok

    threads = [threading.Thread(target=client, args=(i, c)) for i, c in enumerate(per_client)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "clients": clients,
        "requests": requests,
        "failed": failed[0],
        "seconds": round(wall, 3),
        "requests_per_s": round(requests / wall, 2),
        "tokens_per_s": round(tokens[0] / wall, 1),
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
    }


def run(quick: bool = False) -> dict:
    """The load table per temperature (see the module docstring)."""
    try:
        import httpx  # noqa: F401

        import implicit_temperature.serve  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"needs the [serve] extra: {exc}"}
    requests = 32 if quick else 96
    port = free_port()
    proc = _start(port)
    url = f"http://127.0.0.1:{port}"
    out: dict = {"requests_per_setting": requests, "rows": {}}
    try:
        _load(url, 4, 16, 1.0, False)  # warm-up: first calls build caches
        for temperature, seeded, method in SETTINGS:
            rows = [_load(url, c, requests, temperature, seeded, method) for c in CLIENTS]
            base = rows[0]
            for row in rows:
                row["throughput_x"] = round(row["requests_per_s"] / base["requests_per_s"], 2)
                row["p50_x"] = round(row["p50_ms"] / base["p50_ms"], 2)
            label = f"T = {temperature}, {'seeded' if seeded else 'unseeded'}, method {method}"
            out["rows"][label] = rows
    finally:
        proc.terminate()
        try:
            out["server_exit"] = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out["server_exit"] = "killed"
    return out


def section(res: dict) -> str:
    """The Markdown section of ``python -m benchmarks`` for these results."""
    lines = ["## Serving: concurrent clients on `itemp serve calm`", ""]
    if "skipped" in res:
        return "\n".join([*lines, f"Skipped: {res['skipped']}."])
    lines += [
        (__doc__ or "").split("\n\n")[1].replace("\n", " "),
        "",
        f"{res['requests_per_setting']} requests per setting; server exit status after "
        f"SIGTERM: {res.get('server_exit')}.",
        "",
    ]
    cols = ["clients", "requests/s", "tokens/s", "p50 ms", "p99 ms", "throughput x", "p50 x"]
    for temperature, rows in res["rows"].items():
        lines += [f"{temperature}:", ""]
        lines += ["| " + " | ".join(cols) + " | failed |", "|" + "---|" * (len(cols) + 1)]
        for r in rows:
            vals = (r["clients"], r["requests_per_s"], r["tokens_per_s"], r["p50_ms"])
            vals += (r["p99_ms"], r["throughput_x"], r["p50_x"], r["failed"])
            lines.append("| " + " | ".join(str(v) for v in vals) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


if __name__ == "__main__":  # python -m benchmarks.bench_serve [--quick]
    import json

    result = run("--quick" in sys.argv)
    print(json.dumps(result, indent=2))
    print(section(result))
