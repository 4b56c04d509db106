"""Run ``itemp`` with one injected fault (for test_jobs_faults.py).

    python tests/fault_driver.py POINT[@RANK] N itemp-arguments...

kills this process with SIGKILL at the N-th time it reaches POINT (only on rank RANK when
given, as read from the RANK variable torchrun sets):

* ``line-torn``: in the middle of a result line (half of it written and fsynced);
* ``line``: right after a whole result line is on disk;
* ``manifest``: with the manifest's temporary file written, before it is published;
* ``merge``: with results.jsonl's temporary file written, before it replaces anything;
* ``merge-unlink``: after results.jsonl is in place, between deleting two part files;
* ``delay-manifest``: no kill: the manifest write sleeps N/10 s (the race of finding 1).

Anything else runs ``itemp`` unchanged. Nothing here is part of the package.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    point, _, only_rank = point.partition("@")
    seen = [0]

    def hit() -> None:
        if only_rank and os.environ.get("RANK", "0") != only_rank:
            return
        seen[0] += 1
        if seen[0] == n:
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    from implicit_temperature.jobs import safefs, store

    if point in ("line", "line-torn"):
        real_write = store.PartWriter.write

        def write(self, record):
            if point == "line":
                line = real_write(self, record)
                hit()
                return line
            import json

            line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
            half = len(line) // 2
            self._f.write(line[:half])
            self._f.flush()
            os.fsync(self._f.fileno())
            hit()
            self._f.write(line[half:])
            self._f.flush()
            os.fsync(self._f.fileno())
            return line

        store.PartWriter.write = write
    elif point == "manifest":
        real_link = os.link

        def link(src, dst, *a, **k):
            hit()
            return real_link(src, dst, *a, **k)

        store.os.link = link
    elif point == "merge":
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            if str(dst).endswith(store.RESULTS):
                hit()
            return real_replace(src, dst, *a, **k)

        safefs.os.replace = replace
    elif point == "merge-unlink":
        real_unlink = Path.unlink

        def unlink(self, *a, **k):
            real_unlink(self, *a, **k)
            if self.parent.name == store.PARTS:
                hit()

        Path.unlink = unlink
    elif point == "delay-manifest":
        real = store._write_manifest

        def slow(*a, **k):
            time.sleep(n / 10)
            return real(*a, **k)

        store._write_manifest = slow

    from implicit_temperature.cli import main as itemp

    return itemp(argv)


if __name__ == "__main__":
    raise SystemExit(main())
