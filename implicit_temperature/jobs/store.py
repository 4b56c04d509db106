"""The output folder of a job, which is also its checkpoint.

Layout of ``DIR``::

    manifest.json      the job's arguments (written once; a resume must match it)
    parts/rank-R.jsonl results of rank R, appended + flushed + fsynced as units finish
    results.jsonl      the final file: every (problem, temperature) line in problem order,
                       written atomically (temp file + rename) once all units are done
    images/            PNG outputs of image models

On (re)start rank 0 checks the folder: a last line without its newline in a part file is a write
torn by a kill (SIGKILL, power loss) and is cut off, so that unit is simply redone; any other
damage (a complete line that is not a result of this job) is refused with
:class:`JobCorruptError`. Units present in any part file (or in ``results.jsonl``) are finished
and skipped, whichever rank or world size wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import JobCorruptError, JobError, JobMismatchError

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
PARTS = "parts"

UnitKey = tuple[str, float]  # (problem id, temperature)

try:  # POSIX advisory locks: a part file is locked by the process appending to it
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the rest works the same
    fcntl = None


def _lock(f, path: Path) -> None:
    """Lock ``f`` (an open part file) for this process, or raise :class:`JobError` when another
    live process holds it: two jobs appending to one folder would interleave their lines."""
    if fcntl is None:
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise JobError(
            f"{path} is being written by another process: another job (or a leftover process of "
            "an earlier run) uses this --out. Wait for it or stop it, then rerun"
        ) from None


@contextlib.contextmanager
def _locked(path: Path, mode: str) -> Iterator:
    with open(path, mode) as f:
        _lock(f, path)
        yield f


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove it writable with a probe file (before any sampling)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex}"
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise JobError(
            f"output folder {out} is not writable ({exc.strerror or exc}); choose another --out "
            "or fix its permissions"
        ) from None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")  # unique across nodes too
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = []
    if old.get("format") != new.get("format"):
        diffs.append(f"results format {old.get('format')} (now {new.get('format')})")
    oj, nj = old.get("job", {}), new.get("job", {})
    for k in sorted(set(oj) | set(nj)):
        if k == "problems" and isinstance(oj.get(k), str) and isinstance(nj.get(k), str):
            continue  # a file may move: its content (sha256 below) is what must match
        if oj.get(k) != nj.get(k):
            diffs.append(f"{k}: {oj.get(k)!r} in the manifest, {nj.get(k)!r} now")
    for k in ("problems_sha256", "num_problems", "device_type"):
        if old.get(k) != new.get(k):
            what = "problems file content (sha256)" if k == "problems_sha256" else k
            diffs.append(f"{what}: {old.get(k)!r} in the manifest, {new.get(k)!r} now")
    return diffs


def prepare_folder(out: Path, manifest: dict[str, Any]) -> bool:
    """Rank 0, before sampling: check ``out`` is writable, then write the manifest or check it
    against this job. Returns True when resuming. Raises :class:`JobMismatchError` when ``out``
    holds another job, :class:`JobCorruptError` when it holds results but no readable manifest."""
    check_writable(out)
    path = out / MANIFEST
    if not path.exists():
        if (out / RESULTS).exists() or any((out / PARTS).glob("*.jsonl")):
            raise JobCorruptError(
                f"{out} holds results but no {MANIFEST}, so they cannot be matched to this job; "
                "use a fresh --out (or restore the manifest)"
            )
        _write_atomic(path, json.dumps(manifest, indent=2) + "\n")
        return False
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise JobCorruptError(f"{path} is unreadable ({exc}); use a fresh --out") from None
    diffs = _differences(old, manifest)
    if diffs:
        raise JobMismatchError(
            f"output folder {out} holds a job with other arguments, and resuming would mix two "
            "jobs in one file:\n  " + "\n  ".join(diffs) + "\nRerun with the manifest's "
            f"arguments to resume (see {path}), or choose a fresh --out."
        )
    return True


def _parse(path: Path, lineno: int, line: str, known: dict[UnitKey, int] | None) -> dict:
    try:
        rec = json.loads(line)
        key = (rec["id"], float(rec["temperature"]))
        if not isinstance(key[0], str):
            raise TypeError("id is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise JobCorruptError(
            f"{path}:{lineno} is not a result line ({type(exc).__name__}: {exc}); this is not a "
            "torn last write, so the folder was damaged or edited. Delete that line (its unit "
            "is redone) or use a fresh --out"
        ) from None
    if known is not None and key not in known:
        raise JobCorruptError(
            f"{path}:{lineno} holds a result for problem {key[0]!r} at T={key[1]:g}, which is not "
            "part of this job; use a fresh --out"
        )
    return rec


def part_name(shard: tuple[int, int]) -> str:
    """File name of the part written by shard ``(index, count)``."""
    return f"shard-{shard[0]}-of-{shard[1]}.jsonl"


def repair_parts(out: Path, only: str | None = None) -> list[str]:
    """Rank 0 (or a shard, for its own file ``only``): cut torn last lines off the part files;
    returns one note per repair. Never touches a file another process may be writing."""
    notes = []
    paths = sorted((out / PARTS).glob("*.jsonl")) if only is None else [out / PARTS / only]
    for path in (p for p in paths if p.exists()):
        with _locked(path, "r+b") as f:  # never cut a file a live process is appending to
            data = f.read()
            if not data or data.endswith(b"\n"):
                continue
            keep = data.rfind(b"\n") + 1
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
            notes.append(
                f"{path}: cut a torn last line ({len(data) - keep} bytes) left by an "
                "interrupted write; that unit is redone"
            )
    return notes


def read_done(out: Path, known: dict[UnitKey, int]) -> dict[UnitKey, str]:
    """Every finished unit -> its result line (with newline), from ``results.jsonl`` and the part
    files. A last line without its newline is a write in progress (another shard) or torn (cut
    by :func:`repair_parts` on the next start): not finished. Raises :class:`JobCorruptError` on
    a complete line that is not a result of this job."""
    done: dict[UnitKey, str] = {}
    files = [out / RESULTS] if (out / RESULTS).exists() else []
    files += sorted((out / PARTS).glob("*.jsonl"))
    for path in files:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.endswith("\n"):
                    break  # only the last line can lack its newline
                rec = _parse(path, lineno, line, known)
                done.setdefault((rec["id"], float(rec["temperature"])), line)
    return done


class PartWriter:
    """Appends result lines to ``parts/NAME`` (``rank-R.jsonl`` or ``shard-I-of-N.jsonl``): one
    ``write`` per line, then flush and
    fsync, so a kill leaves at most one torn last line."""

    def __init__(self, out: Path, name: str, fsync: bool = True) -> None:
        (out / PARTS).mkdir(exist_ok=True)
        self.path = out / PARTS / name
        self._f = open(self.path, "a", encoding="utf-8")
        try:
            _lock(self._f, self.path)
        except JobError:
            self._f.close()
            raise
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> str:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        self._f.write(line)
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())
        return line

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def merge(out: Path, order: Iterable[UnitKey], known: dict[UnitKey, int]) -> Path:
    """Rank 0, once every unit is done: write ``results.jsonl`` in ``order`` (problem order, then
    temperature order) atomically, then remove the part files. Idempotent."""
    for path in sorted((out / PARTS).glob("*.jsonl")):
        with _locked(path, "rb"):  # no other process still appending
            pass
    done = read_done(out, known)
    lines = []
    for key in order:
        if key not in done:
            raise JobError(f"cannot merge: problem {key[0]!r} at T={key[1]:g} has no result yet")
        lines.append(done[key])
    _write_atomic(out / RESULTS, "".join(lines))
    for path in (out / PARTS).glob("*.jsonl"):
        path.unlink()
    try:
        (out / PARTS).rmdir()
    except OSError:
        pass
    return out / RESULTS


class PartWatcher:
    """Rank 0's view of every rank's progress: new complete lines in the part files since the
    last call (their count and the draws they report). Read-only; tolerant of partial lines."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._offsets: dict[Path, int] = {}

    def poll(self) -> tuple[int, int]:
        units = draws = 0
        for path in (self.out / PARTS).glob("*.jsonl"):
            start = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                units += 1
                try:
                    draws += int(json.loads(line).get("draws") or 0)
                except (ValueError, TypeError, AttributeError):
                    pass
            self._offsets[path] = start + end
        return units, draws

    def skip_existing(self) -> None:
        """Start counting from now (lines written before this run are not progress)."""
        self.poll()
