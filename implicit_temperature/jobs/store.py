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
import hashlib
import json
import logging
import math
import numbers
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import InvalidArgumentError, InvalidArgumentTypeError
from . import safefs
from .errors import JobCorruptError, JobError, JobMismatchError
from .seeding import problem_seed

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
PARTS = "parts"
#: How long a job waits for another process that is checking the same folder (seconds).
LOCK_WAIT = 60.0

UnitKey = tuple[str, float]  # (problem id, temperature)
logger = logging.getLogger(__name__)

try:  # POSIX advisory locks: a part file is locked by the process appending to it
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the rest works the same
    fcntl = None


def _lock(f: IO, path: Path) -> None:
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
def _locked(out: Path, rel: Path, mode: str) -> Iterator[IO]:
    with safefs.open_file(out, rel, mode) as f:
        _lock(f, out / rel)
        yield f


class FolderLock:
    """The job folder's own lock (``flock`` on the folder): exclusive while a process checks and
    sets up the folder (manifest, repairs), shared while jobs run in it, so a second job can never
    check the folder between another's check and its manifest write, and a folder is only taken
    over (see :func:`prepare_folder`) when no live job holds it. Shards of one job share it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._fd: int | None = None
        self.mode: str | None = None  # "exclusive" | "shared" | None (not held)

    def acquire(self, wait: float = LOCK_WAIT) -> str:
        """Take the lock exclusively when no job holds it, else shared beside the running ones;
        waits up to ``wait`` s while another process holds it exclusively (it is checking)."""
        if fcntl is None:  # pragma: no cover
            self.mode = "exclusive"
            return self.mode
        self._fd = os.open(self.out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        deadline = time.monotonic() + wait
        while True:
            for mode, flag in (("exclusive", fcntl.LOCK_EX), ("shared", fcntl.LOCK_SH)):
                try:
                    fcntl.flock(self._fd, flag | fcntl.LOCK_NB)
                except OSError:
                    continue
                self.mode = mode
                return mode
            if time.monotonic() > deadline:
                self.release()
                raise JobError(
                    f"{self.out} has been held by another process setting up a job for "
                    f"{wait:.0f} s; wait for it (or stop it) and rerun"
                )
            time.sleep(0.02)

    def share(self) -> None:
        """Exclusive -> shared (not atomic: the caller checks the manifest again afterwards)."""
        if self._fd is not None and fcntl is not None and self.mode == "exclusive":
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.mode = "shared"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        self.mode = None


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove it writable with a probe file (before any sampling);
    the probe is removed whatever happens."""
    probe = out / f".write-test-{uuid.uuid4().hex}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | safefs._NOFOLLOW)
            with os.fdopen(fd, "wb") as f:
                f.write(b"ok")
                f.flush()
                os.fsync(f.fileno())
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
    except OSError as exc:
        raise JobError(
            f"output folder {out} is not writable ({exc.strerror or exc}); choose another --out "
            "or fix its permissions (or free space)"
        ) from None


def _write_text(out: Path, name: str, text: str) -> None:
    safefs.write_replace(out, name, lambda f: f.write(text.encode("utf-8")), sync=True)


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


def job_fingerprint(manifest: dict[str, Any]) -> str:
    """16 hex digits identifying a job: sha256 of its manifest without the problems file's path
    (a moved file is the same job; its content is in ``problems_sha256``). Every result line
    carries it, so a line copied from another job is recognised."""
    job = dict(manifest.get("job", {}))
    if isinstance(job.get("problems"), str):
        job["problems"] = "<file>"
    text = json.dumps({**manifest, "job": job}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    try:
        with safefs.open_file(out, MANIFEST, "rb") as f:
            old = json.loads(f.read().decode("utf-8"))
        if not isinstance(old, dict):
            raise InvalidArgumentError("not a JSON object")
        if not isinstance(old.get("job", {}), dict):
            raise InvalidArgumentError("its 'job' is not a JSON object")
    except (OSError, ValueError) as exc:
        raise JobCorruptError(
            f"{path} is unreadable ({exc}); restore it or use a fresh --out"
        ) from None
    return old


def _part_files(out: Path) -> list[Path]:
    safefs.check_no_links(out, Path(PARTS))
    parts = out / PARTS
    if not parts.is_dir():
        return []
    files = []
    for p in sorted(parts.iterdir()):
        if p.is_symlink():
            raise safefs.link_refused(p)
        if p.suffix == ".jsonl":
            files.append(p)
    return files


def _holds_results(out: Path) -> bool:
    """Whether any result line (complete or not) is in ``out``."""
    safefs.check_no_links(out, Path(RESULTS))
    if (out / RESULTS).exists() and (out / RESULTS).stat().st_size:
        return True
    return any(p.stat().st_size for p in _part_files(out))


def _check_links(out: Path) -> None:
    """Refuse a symbolic link anywhere the job reads or writes."""
    for name in (MANIFEST, RESULTS, PARTS, "images"):
        safefs.check_no_links(out, Path(name))
    _part_files(out)
    images = out / "images"
    if images.is_dir():
        for p in images.rglob("*"):
            if p.is_symlink():
                raise safefs.link_refused(p)


def prepare_folder(out: Path, manifest: dict[str, Any], exclusive: bool = True) -> bool:
    """Rank 0, before sampling, holding the folder's :class:`FolderLock`: check ``out`` is
    writable and holds no links, then write the manifest (exclusive create) or check it against
    this job. Returns True when resuming.

    ``exclusive`` (no other job runs in ``out``): stale temporary files are removed, and a
    manifest of another job that stopped before its first result (a failed start) is replaced,
    so a corrected rerun can take the folder. Raises :class:`JobMismatchError` when ``out`` holds
    another job's results (or a running job), :class:`JobCorruptError` when it holds results but
    no readable manifest, or a link."""
    check_writable(out)
    _check_links(out)
    if exclusive:
        for p in safefs.remove_stale_temporaries(out):
            logger.info("removed %s, left by an interrupted write", p)
    path = out / MANIFEST
    if not path.exists():
        if _holds_results(out):
            raise JobCorruptError(
                f"{out} holds results but no {MANIFEST}, so they cannot be matched to this job; "
                "use a fresh --out (or restore the manifest)"
            )
        _write_manifest(out, manifest, replace=False)
        return False
    old = _read_manifest(out)
    diffs = _differences(old, manifest)
    if diffs and exclusive and not _holds_results(out):
        logger.warning(
            "%s: replacing the manifest of a job that stopped before its first result", out
        )
        _write_manifest(out, manifest, replace=True)
        return False
    if diffs:
        running = "" if exclusive else " (and a job is running in it now)"
        raise JobMismatchError(
            f"output folder {out} holds a job with other arguments{running}, and resuming "
            "would mix two jobs in one file:\n  " + "\n  ".join(diffs) + "\nRerun with the "
            f"manifest's arguments to resume (see {path}), or choose a fresh --out."
        )
    return True


def _write_manifest(out: Path, manifest: dict[str, Any], replace: bool) -> None:
    """Publish the manifest atomically; without ``replace`` an existing one is never
    overwritten (hard link of the complete temporary file: an exclusive create)."""
    text = json.dumps(manifest, indent=2) + "\n"
    if replace:
        _write_text(out, MANIFEST, text)
        return
    tmp = f".{MANIFEST}{safefs.TMP_MARK}{uuid.uuid4().hex}"
    try:
        safefs.write_replace(out, tmp, lambda f: f.write(text.encode("utf-8")), sync=True)
        try:
            os.link(out / tmp, out / MANIFEST)
        except FileExistsError:
            raise JobMismatchError(
                f"another job wrote {out / MANIFEST} at the same moment; rerun (it is then "
                "checked against this job) or choose a fresh --out"
            ) from None
        except OSError:  # a file system without hard links: exclusive create instead
            fd = safefs.open_fd(out, MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out / tmp)
    safefs.fsync_dir(out)


def check_manifest_unchanged(out: Path, manifest: dict[str, Any]) -> None:
    """After :meth:`FolderLock.share`: the manifest is still this job's (nobody took over)."""
    diffs = _differences(_read_manifest(out), manifest)
    if diffs:
        raise JobMismatchError(
            f"another job took {out} while this one started:\n  " + "\n  ".join(diffs)
        )


@dataclass(frozen=True)
class Expected:
    """What every result line of this job must show: one of its units, its fingerprint (field
    ``job``) and its per-unit seed ``problem_seed(seed, id, T)``. ``fingerprint``/``seed`` None
    skip those checks (folders written by hand in tests)."""

    known: dict[UnitKey, int]
    fingerprint: str | None = None
    seed: int | None = None


def _corrupt(where: str, why: str) -> JobCorruptError:
    return JobCorruptError(
        f"{where} is not a result line of this job ({why}); this is not a torn last write, so "
        "the folder was damaged, edited or mixed with another job's files. Delete that line "
        "(its unit is redone) or use a fresh --out"
    )


def _parse(path: Path, lineno: int, raw: bytes, expect: Expected) -> dict:
    where = f"{path}:{lineno}"
    try:
        rec = json.loads(raw.decode("utf-8"))
        if not isinstance(rec, dict):
            raise InvalidArgumentTypeError("not a JSON object")
        pid, t = rec["id"], rec["temperature"]
        if not isinstance(pid, str):
            raise InvalidArgumentTypeError("id is not a string")
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t):
            raise InvalidArgumentTypeError(f"temperature {t!r} is not a number")
    except UnicodeDecodeError as exc:
        raise _corrupt(where, f"bytes that are not UTF-8 at column {exc.start + 1}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise _corrupt(where, f"{type(exc).__name__}: {exc}") from None
    key = (pid, float(t))
    if key not in expect.known:
        raise JobCorruptError(
            f"{where} holds a result for problem {key[0]!r} at T={key[1]!r}, which is not "
            "part of this job; use a fresh --out"
        )
    if expect.fingerprint is not None and rec.get("job") != expect.fingerprint:
        raise _corrupt(
            where, f"job fingerprint {rec.get('job')!r}, this job's is {expect.fingerprint!r}"
        )
    if expect.seed is not None and rec.get("seed") != problem_seed(expect.seed, *key):
        raise _corrupt(where, f"seed {rec.get('seed')!r} is not this job's seed for that unit")
    return rec


def _as_expected(known: dict[UnitKey, int] | Expected) -> Expected:
    return known if isinstance(known, Expected) else Expected(dict(known))


def part_name(shard: tuple[int, int]) -> str:
    """File name of the part written by shard ``(index, count)``."""
    return f"shard-{shard[0]}-of-{shard[1]}.jsonl"


def repair_parts(out: Path, only: str | None = None) -> list[str]:
    """Rank 0 (or a shard, for its own file ``only``): cut torn last lines off the part files;
    returns one note per repair. Never touches a file another process may be writing, nor a
    file behind a link."""
    notes = []
    paths = _part_files(out) if only is None else [out / PARTS / only]
    for path in (p for p in paths if p.exists() or p.is_symlink()):
        with _locked(out, path.relative_to(out), "r+b") as f:  # never cut a live file
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


def read_done(out: Path, known: dict[UnitKey, int] | Expected) -> dict[UnitKey, str]:
    """Every finished unit -> its result line (with newline), from ``results.jsonl`` and the part
    files. A last line without its newline is a write in progress (another shard) or torn (cut
    by :func:`repair_parts` on the next start): not finished. Raises :class:`JobCorruptError` on
    a complete line that is not a result of this job (``known`` may be an :class:`Expected`), on
    two different lines for one unit, and on a link."""
    expect = _as_expected(known)
    done: dict[UnitKey, str] = {}
    first: dict[UnitKey, str] = {}
    safefs.check_no_links(out, Path(RESULTS))
    files = [out / RESULTS] if (out / RESULTS).exists() else []
    files += _part_files(out)
    for path in files:
        with safefs.open_file(out, path.relative_to(out), "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.endswith(b"\n"):
                    break  # only the last line can lack its newline
                rec = _parse(path, lineno, raw, expect)
                key = (rec["id"], float(rec["temperature"]))
                line = raw.decode("utf-8")
                if key in done and done[key] != line:
                    raise JobCorruptError(
                        f"two different results for problem {key[0]!r} at T={key[1]!r}: "
                        f"{first[key]} and {path}:{lineno}; the folder was edited or mixed. "
                        "Delete the wrong line (or both: the unit is redone) or use a fresh --out"
                    )
                done.setdefault(key, line)
                first.setdefault(key, f"{path}:{lineno}")
    return done


class PartWriter:
    """Appends result lines to ``parts/NAME`` (``rank-R.jsonl`` or ``shard-I-of-N.jsonl``): one
    ``write`` per line, then flush and fsync, so a kill leaves at most one torn last line. The
    file is opened without following links."""

    def __init__(self, out: Path, name: str, fsync: bool = True) -> None:
        safefs.make_dirs(out, PARTS)
        self.path = out / PARTS / name
        self._f = safefs.open_file(out, Path(PARTS) / name, "a")
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


def merge(out: Path, order: Iterable[UnitKey], known: dict[UnitKey, int] | Expected) -> Path:
    """Rank 0, once every unit is done: write ``results.jsonl`` in ``order`` (problem order, then
    temperature order) atomically, then remove the part files. Idempotent."""
    for path in _part_files(out):
        with _locked(out, path.relative_to(out), "rb"):  # no other process still appending
            pass
    done = read_done(out, known)
    lines = []
    for key in order:
        if key not in done:
            raise JobError(f"cannot merge: problem {key[0]!r} at T={key[1]:g} has no result yet")
        lines.append(done[key])
    _write_text(out, RESULTS, "".join(lines))
    for path in _part_files(out):
        path.unlink()
    with contextlib.suppress(OSError):
        (out / PARTS).rmdir()
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
