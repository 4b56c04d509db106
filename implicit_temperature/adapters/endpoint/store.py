"""The draw store: every completion an endpoint returned, on disk before anything uses it.

Layout: ``ROOT/<identity hash>/request.json`` (what the draws are of: endpoint, model, prompt or
messages, request parameters) and ``ROOT/<identity hash>/draws.jsonl``, one line per answered
request::

    {"stream": "7", "req": 3, "n": 16, "seed": 123, "choices": [{"text": ..., "finish_reason":
     ...}, ...], "usage": {...}}

A *stream* is one run's sequence of requests (``req`` = 0, 1, 2, ...), so runs with different
seeds never share draws, and a rerun with the same seed finds its own requests again. Each line
is written with one ``write`` on a file opened with ``O_APPEND`` and then ``fsync``'d, before the
completions are handed to the sampler: a crash (Ctrl-C, SIGKILL, power loss after the fsync) loses
at most the requests still in flight. A torn last line (a crash inside ``write``) is cut off when
the file is next opened; lines that do not parse elsewhere are an error (the store is damaged).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from ...core.errors import ImplicitTemperatureError


class DrawStoreError(ImplicitTemperatureError):
    """The draw store cannot be used (unwritable folder, damaged file, a changed request)."""


def identity_hash(identity: dict[str, Any]) -> str:
    """24 hex digits of sha256 of the identity's canonical JSON (sorted keys)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class DrawLog:
    """The requests answered for one identity, by stream: ``{stream: {req: record}}``.

    ``path=None`` keeps them in memory only (``store=False``: nothing survives the process).
    """

    def __init__(self, path: Path | None, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self._lock = threading.Lock()
        self.records: dict[str, dict[int, dict[str, Any]]] = {}
        if path is not None:
            self._open(path)

    def _open(self, path: Path) -> None:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            meta = folder / "request.json"
            if not meta.exists():
                tmp = folder / f"request.json.{os.getpid()}.tmp"
                tmp.write_text(json.dumps(self.identity, indent=2, sort_keys=True) + "\n")
                os.replace(tmp, meta)
        except OSError as exc:
            raise DrawStoreError(
                f"cannot write the draw store in {folder}: {exc}; pass store=<a writable folder>"
            ) from None
        if path.exists():
            self._read(path)

    def _read(self, path: Path) -> None:
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a torn last line: the request it held is simply asked again
            with open(path, "r+b") as f:
                f.truncate(cut)
                os.fsync(f.fileno())
            data = data[:cut]
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                stream, req = str(rec["stream"]), int(rec["req"])
                rec["choices"]  # noqa: B018 - must be there
            except (ValueError, KeyError, TypeError):
                raise DrawStoreError(
                    f"{path}:{lineno} is not a draw record; the store is damaged. Move the file "
                    "away to start that request's draws afresh (its completions are lost)"
                ) from None
            self.records.setdefault(stream, {})[req] = rec

    def stream(self, name: str) -> dict[int, dict[str, Any]]:
        """The records of one stream by request index (a live view)."""
        with self._lock:
            return self.records.setdefault(name, {})

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (one ``write`` + ``fsync``), then index it."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self.path is not None:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.records.setdefault(str(record["stream"]), {})[int(record["req"])] = record


class DrawStore:
    """A folder of :class:`DrawLog` files, one per identity (``root=None``: memory only)."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = None if root is None else Path(root)
        self._logs: dict[str, DrawLog] = {}

    def log(self, identity: dict[str, Any]) -> DrawLog:
        """The log of ``identity`` (created on first use)."""
        h = identity_hash(identity)
        if h not in self._logs:
            path = None if self.root is None else self.root / h / "draws.jsonl"
            self._logs[h] = DrawLog(path, identity)
        return self._logs[h]


def default_store_root() -> Path:
    """``$ITEMP_DRAW_STORE``, else ``$XDG_CACHE_HOME/implicit-temperature/draws`` (default
    ``~/.cache/implicit-temperature/draws``)."""
    env = os.environ.get("ITEMP_DRAW_STORE")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "implicit-temperature" / "draws"
