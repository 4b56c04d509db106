"""The results record beside the report (``benchmarks.json`` next to ``benchmarks.md``).

Each run writes, per section it ran, the section's result, its wall time and the run's
provenance (date, commit, mode, load). ``python -m benchmarks --update --only SECTION ...``
reruns some sections and keeps the others' results from the record, so that a change which
touches one section is measured without rerunning the page's hour; the page then says which
run produced which section (:func:`provenance_lines`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

Entry = dict[str, Any]


def path_for(report: Path) -> Path:
    """The record that belongs to a report: same folder and stem, ``.json``."""
    return report.with_suffix(".json")


def load(report: Path) -> dict[str, Entry]:
    """Section name -> entry (``result``, ``seconds``, ``run``) of the record; {} when absent."""
    p = path_for(report)
    if not p.exists():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    return {name: decode(entry) for name, entry in data.get("sections", {}).items()}


def save(report: Path, entries: dict[str, Entry]) -> None:
    """Write the record (sections in the given order)."""
    data = {"sections": {name: encode(entry) for name, entry in entries.items()}}
    text = json.dumps(data, indent=1, default=_jsonable, sort_keys=False)
    path_for(report).write_text(text + "\n", encoding="utf-8")


#: A dict whose keys are not all strings (a section keyed by tolerance, 0.05) is stored as its
#: items, so that a result read back renders as the one the section returned.
ITEMS, TUPLE = "__items__", "__tuple__"


def encode(value: Any) -> Any:
    """``value`` as JSON data that :func:`decode` turns back into it: dicts with non-string
    keys become ``{"__items__": [[key, value], ...]}`` and tuple keys ``{"__tuple__": [...]}``
    (tuples elsewhere become lists, as JSON has them)."""
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {ITEMS: [[_encode_key(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def _encode_key(key: Any) -> Any:
    if isinstance(key, tuple):
        return {TUPLE: [_encode_key(k) for k in key]}
    return key


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if set(value) == {ITEMS}:
            return {_decode_key(k): decode(v) for k, v in value[ITEMS]}
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _decode_key(key: Any) -> Any:
    if isinstance(key, dict) and set(key) == {TUPLE}:
        return tuple(_decode_key(k) for k in key[TUPLE])
    return key


def _jsonable(value: Any) -> Any:
    """Results are plain data; a stray tensor or path is stored as its list or text."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else str(value)


def commit(root: Path) -> str:
    """The checkout's commit (short), with '+changes' when the tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def provenance_lines(entries: dict[str, Entry]) -> list[str]:
    """One line per distinct run when the page's sections come from more than one."""
    runs: dict[tuple[str, str, str], list[str]] = {}
    for name, entry in entries.items():
        run = entry.get("run", {})
        key = (run.get("date", "?"), run.get("commit", "?"), run.get("mode", "?"))
        runs.setdefault(key, []).append(name)
    if len(runs) <= 1:
        return []
    lines = ["The sections below come from more than one run (`--update`):", ""]
    for (date, sha, mode), names in runs.items():
        lines.append(f"- {date} UTC, commit {sha}, {mode} run: {', '.join(names)}")
    return lines
