"""Size limits of a job, checked before anything is loaded or sampled.

A job of 10^12 problems, 10^9 outputs per problem or a 10 MB prompt would run for hours or
exhaust memory before it failed; each such size is refused up front with a message that names
the limit and how to raise it: the environment variable ``ITEMP_MAX_<NAME>`` (e.g.
``ITEMP_MAX_NUM_OUTPUTS=5000000``). The limits are far above what the shipped models need.
"""

from __future__ import annotations

import os

from .errors import JobError

#: name -> default limit (raise one with the environment variable ITEMP_MAX_<NAME upper-cased>).
LIMITS: dict[str, int] = {
    "num_problems": 10_000_000,  # problems in one job (a count, or lines of a file)
    "num_outputs": 1_000_000,  # outputs per (problem, temperature)
    "num_samples": 1_000_000,  # N of the batch method
    "max_new_tokens": 100_000,  # CALM tokens per output
    "prompt_chars": 1_000_000,  # characters of one prompt
    "meta_chars": 100_000,  # characters of one problem's extra JSON keys
    "problems_file_bytes": 2_000_000_000,  # size of the problems file
}


def limit(name: str) -> int:
    """The limit ``name`` in force (its default, or ``ITEMP_MAX_<NAME>``)."""
    env = f"ITEMP_MAX_{name.upper()}"
    text = os.environ.get(env)
    if text is None:
        return LIMITS[name]
    try:
        value = int(text)
    except ValueError:
        raise JobError(f"{env}={text!r} is not an integer") from None
    return value


def check_limit(name: str, value: int, what: str | None = None) -> None:
    """Raise :class:`JobError` when ``value`` exceeds the limit ``name``."""
    cap = limit(name)
    if value > cap:
        raise JobError(
            f"{what or name} is {value:,}, above the limit of {cap:,} (a job this size would "
            f"run for hours or exhaust memory before failing); if you mean it, raise the "
            f"limit with the environment variable ITEMP_MAX_{name.upper()}={value}"
        )
