"""The problems of a job: prompts/contexts from a JSONL or text file, or a count.

* JSONL (``.jsonl`` / ``.ndjson``): one JSON object per line, ``{"prompt": "cat ", "id": "a1"}``.
  ``prompt`` (aliases ``text``, ``context``) is required; ``id`` (a string or an integer) is
  optional and defaults to the line number; any other keys are copied to the results as ``meta``.
  Blank lines are ignored.
* Text (any other suffix): one prompt per line, the whole line without its newline (trailing
  spaces kept); blank lines are ignored; the id is the line number.
* A count ``n`` (unconditional models): problems ``"0" .. "n-1"`` without a prompt.

A malformed line stops the job before any sampling with :class:`ProblemFileError` naming the file
and line number (nothing is skipped silently: a skipped problem would simply be missing from the
results). Fix the line and rerun; with the same ``--out`` finished problems are kept.
Ids must be unique (they seed each problem's generator and key the resumable results).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMPT_KEYS = ("prompt", "text", "context")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Problem:
    """One problem: ``id`` (unique str), ``prompt`` (None for unconditional models), ``line``
    (1-based line in the problems file, 0 for counted problems) and ``meta`` (extra JSON keys)."""

    id: str
    prompt: str | None = None
    line: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def _error(msg: str) -> Exception:
    from .errors import ProblemFileError

    return ProblemFileError(msg)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (the manifest records it: a changed problems file is refused)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sizes(where: str, prompt: str, meta: dict[str, Any]) -> None:
    """Refuse a prompt or extra keys too large (limits.py), or extra keys that are not strict
    JSON (NaN) or nest too deep to be written back: every problem is checked before sampling."""
    from .limits import check_limit

    check_limit("prompt_chars", len(prompt), f"{where}: the prompt's length in characters")
    if not meta:
        return
    try:
        text = json.dumps(meta, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        why = "it nests too deep" if isinstance(exc, RecursionError) else str(exc)
        raise _error(
            f"{where}: the extra keys {sorted(meta)} cannot be copied to the results as strict "
            f"JSON ({why}); remove them or make them plain values"
        ) from None
    check_limit("meta_chars", len(text), f"{where}: the extra keys' size in characters")


def _parse_jsonl_line(path: Path, lineno: int, line: str) -> Problem:
    where = f"{path}:{lineno}"
    try:
        obj = json.loads(line)
    except RecursionError:
        raise _error(f"{where}: the JSON object nests too deep; flatten it") from None
    except json.JSONDecodeError as exc:
        raise _error(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be one "
            'object such as {"id": "q1", "prompt": "cat "}. Fix or delete the line and rerun'
        ) from None
    if not isinstance(obj, dict):
        raise _error(
            f"{where}: expected a JSON object, got {type(obj).__name__}; write "
            '{"prompt": ...} on each line'
        )
    keys = [k for k in PROMPT_KEYS if k in obj]
    if len(keys) != 1:
        found = "none" if not keys else ", ".join(keys)
        raise _error(
            f"{where}: each object needs exactly one of {', '.join(PROMPT_KEYS)} (found {found})"
        )
    prompt = obj.pop(keys[0])
    if not isinstance(prompt, str):
        raise _error(f"{where}: {keys[0]!r} must be a string, got {type(prompt).__name__}")
    pid = obj.pop("id", lineno)
    if isinstance(pid, bool) or not isinstance(pid, (str, int)) or pid == "":
        raise _error(f"{where}: 'id' must be a non-empty string or an integer, got {pid!r}")
    _check_sizes(where, prompt, obj)
    return Problem(id=str(pid), prompt=prompt, line=lineno, meta=obj)


def load_problems(source: str | Path | int) -> list[Problem]:
    """Problems from a JSONL/text file or a count (see the module docstring). Raises
    :class:`ProblemFileError` for a missing/unreadable file, a malformed line, a duplicate id or
    an empty file."""
    if isinstance(source, bool):
        raise _error(f"problems must be a file path or a count >= 1, got {source!r}")
    from .limits import check_limit

    if isinstance(source, int):
        if source < 1:
            raise _error(f"the number of problems must be >= 1, got {source}")
        check_limit("num_problems", source)
        return [Problem(id=str(i)) for i in range(source)]
    path = Path(source)
    if not path.is_file():
        raise _error(f"problems file {path} does not exist (or is not a file)")
    try:
        check_limit("problems_file_bytes", path.stat().st_size, f"problems file {path}'s size")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read problems file {path}: {exc}") from None
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        if jsonl:
            p = _parse_jsonl_line(path, lineno, line)
        else:
            _check_sizes(f"{path}:{lineno}", line, {})
            p = Problem(str(lineno), line, lineno)
        if p.id in seen:
            raise _error(
                f"{path}:{lineno}: duplicate id {p.id!r} (first on line {seen[p.id]}); "
                "ids must be unique"
            )
        seen[p.id] = lineno
        problems.append(p)
        if len(problems) > 1 and len(problems) % 100_000 == 0:
            check_limit("num_problems", len(problems), f"problems in {path}")
    if not problems:
        raise _error(f"problems file {path} holds no problems (only blank lines)")
    return problems
