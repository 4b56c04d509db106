"""Server metrics in the Prometheus text format (``GET /metrics``), without a client library.

Counters: requests by endpoint and status, prompt and generated tokens, base draws; histograms:
request latency by endpoint and the size of each decoded batch. Thread-safe (the batch worker
thread and the event loop both update it).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}')
        brace = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{brace} {self.total}", f"{name}_count{brace} {self.n}"]
        return out


class Metrics:
    """What ``/metrics`` reports; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.counters: dict[str, float] = defaultdict(float)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.counters[name] += value

    def batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def render(self, queue_depth: int = 0) -> str:
        """The Prometheus exposition text (version 0.0.4)."""
        with self._lock:
            lines = [
                "# HELP itemp_requests_total HTTP requests by endpoint and status code.",
                "# TYPE itemp_requests_total counter",
            ]
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'itemp_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += [
                "# HELP itemp_request_seconds Request latency by endpoint.",
                "# TYPE itemp_request_seconds histogram",
            ]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("itemp_request_seconds", f'endpoint="{endpoint}"')
            helps = {
                "draws": "Base draws of the model spent (all requests).",
                "prompt_tokens": "Prompt tokens read.",
                "generated_tokens": "Tokens generated.",
                "images": "Images generated.",
                "cancelled": "Requests whose client went away before they were answered.",
            }
            for name, text in helps.items():
                lines += [
                    f"# HELP itemp_{name}_total {text}",
                    f"# TYPE itemp_{name}_total counter",
                    f"itemp_{name}_total {self.counters.get(name, 0.0):g}",
                ]
            lines += [
                "# HELP itemp_batch_size Requests decoded together in one generate call.",
                "# TYPE itemp_batch_size histogram",
                *self.batch_size.lines("itemp_batch_size", ""),
                "# HELP itemp_queue_depth Requests waiting for the batch worker.",
                "# TYPE itemp_queue_depth gauge",
                f"itemp_queue_depth {queue_depth}",
            ]
        return "\n".join(lines) + "\n"
