"""File access inside a job folder that never follows a symbolic link.

A job folder may be shared, synced or restored from an archive, so what is in it is untrusted:
a link planted at ``parts/rank-0.jsonl`` or ``images/0/T0.5-0.png`` must not make the job read,
truncate, append to or overwrite a file outside ``--out``. Every path the job opens below the
folder goes through :func:`open_fd` (each folder component is checked with ``lstat`` and the file
is opened with ``O_NOFOLLOW``), and files are replaced by ``rename`` of a fresh temporary file
(which replaces a link, never its target). A link found is refused with :class:`JobCorruptError`.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import JobCorruptError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Prefix of every temporary file the job writes (removed on failure and on the next start).
TMP_MARK = ".tmp-"


def link_refused(path: Path) -> JobCorruptError:
    return JobCorruptError(
        f"{path} is a symbolic link: links inside a job folder are never followed (they could "
        "point outside --out). Remove the link (or replace it with the file itself), or use a "
        "fresh --out"
    )


def check_no_links(out: Path, rel: Path) -> None:
    """Raise :class:`JobCorruptError` when ``out / rel`` or a folder between it and ``out`` is a
    symbolic link (a missing component is fine)."""
    path = out
    for part in rel.parts:
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise link_refused(path)


def open_fd(out: Path, rel: Path | str, flags: int, mode: int = 0o644) -> int:
    """``os.open(out / rel, flags | O_NOFOLLOW)`` after checking no folder in ``rel`` is a link."""
    rel = Path(rel)
    check_no_links(out, rel)
    try:
        return os.open(out / rel, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise link_refused(out / rel) from None
        raise


def open_file(out: Path, rel: Path | str, mode: str) -> IO:
    """A file object for ``out / rel`` (``mode`` ``"rb"``, ``"r+b"`` or ``"a"``), never through a
    link."""
    flags = {
        "rb": os.O_RDONLY,
        "r+b": os.O_RDWR,
        "a": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
    }[mode]
    fd = open_fd(out, rel, flags)
    try:
        if mode == "a":
            return os.fdopen(fd, "a", encoding="utf-8")
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def make_dirs(out: Path, rel: Path | str) -> Path:
    """Create ``out / rel`` (and its parents below ``out``), refusing links; returns the path."""
    rel = Path(rel)
    path = out
    for part in rel.parts:
        path = path / part
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise link_refused(path)
        if not stat.S_ISDIR(st.st_mode):
            raise JobCorruptError(f"{path} should be a folder; remove it or use a fresh --out")
    return path


def write_replace(out: Path, rel: Path | str, write: Callable[[IO], None], sync: bool) -> None:
    """Write ``out / rel`` through a fresh temporary file in the same folder and ``rename`` it
    into place (atomic; a link at ``rel`` is replaced, its target untouched). ``write(f)`` gets
    the binary file object. The temporary file is removed when anything fails."""
    rel = Path(rel)
    tmp = rel.with_name(f".{rel.name}{TMP_MARK}{uuid.uuid4().hex}")  # unique across nodes too
    fd = open_fd(out, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(out / tmp, out / rel)
    except BaseException:
        try:
            os.unlink(out / tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir((out / rel).parent)


def fsync_dir(path: Path) -> None:
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


def remove_stale_temporaries(out: Path, folders: tuple[str, ...] = ("", "images")) -> list[Path]:
    """Delete temporary files left by killed writers in ``out`` and ``out/images/*`` (only while
    this process holds the folder exclusively); returns what was removed."""
    removed = []
    roots = [out] + (
        [p for p in (out / "images").iterdir() if p.is_dir() and not p.is_symlink()]
        if "images" in folders and (out / "images").is_dir() and not (out / "images").is_symlink()
        else []
    )
    for root in roots:
        for p in root.iterdir():
            if p.name.startswith(".") and (TMP_MARK in p.name or p.name.startswith(".write-test-")):
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed
