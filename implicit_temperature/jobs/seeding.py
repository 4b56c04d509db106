"""Per-problem seeds: a result depends on (seed, problem id, temperature) only.

Never on the batch, the shard, the rank or the number of processes: every (problem, temperature)
unit runs with its own ``torch.Generator`` seeded by :func:`problem_seed`.
"""

from __future__ import annotations

import hashlib


def problem_seed(seed: int, problem_id: str, temperature: float) -> int:
    """A 63-bit seed from the job seed, the problem id and the temperature (sha256 of the three;
    stable across Python versions, platforms and processes, unlike ``hash()``)."""
    text = f"implicit-temperature/job\x00{int(seed)}\x00{problem_id}\x00{float(temperature)!r}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1
