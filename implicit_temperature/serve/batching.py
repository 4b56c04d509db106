"""Dynamic batching: requests that arrive together are decoded together.

One worker thread owns the model. :meth:`Batcher.submit` (async) queues a work item and awaits
its result. The worker takes the oldest item and gathers more items with the same
``batch_key``, then runs them in one ``engine.run_batch`` call. It starts the batch when
``max_batch`` rows are there; or when no item has arrived for ``max_wait_ms`` and the batch
holds the rows it expects; or at the latest ``MAX_WAIT_FACTOR * max_wait_ms`` after the oldest
item arrived (or after the last batch ended, if later). The rows it expects: one, except right
after a batch, when they are the rows that were queued when it ended plus that batch's own
rows, since clients that just got their answers are likely to send again. Both rules matter
when many clients send at once: their requests reach the worker one by one as the event loop
parses them, and a window fixed from the first arrival cuts such a wave into a small batch and
a large one; once cut, the two halves would keep alternating (each half's requests arrive while
the other half runs). A lone client's request waits ``max_wait_ms`` as before.

Items whose client went away (``cancelled`` set) are dropped
before they run; a running item's rows stop at the next chunk (the engine's stopping
criterion). When a batch fails, its items are rerun one by one so that only the faulty request
gets the error (answers do not depend on batch-mates, so the others are unchanged).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidArgumentError
from .metrics import Metrics

log = logging.getLogger(__name__)

#: The longest a batch waits for more items, as a multiple of ``max_wait_ms`` (see above).
MAX_WAIT_FACTOR = 4


@dataclass(eq=False)  # identity: work items hold tensors
class _Item:
    work: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


def _resolve(item: _Item, result: Any, error: BaseException | None) -> None:
    def done() -> None:
        if item.future.done():
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)

    try:
        item.loop.call_soon_threadsafe(done)
    except RuntimeError:  # the event loop is closed (server stopped): nobody is waiting
        pass


class Batcher:
    """The queue and its worker thread (see the module docstring)."""

    def __init__(
        self, engine: Any, max_batch: int = 32, max_wait_ms: float = 10.0, metrics: Any = None
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise InvalidArgumentError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.engine, self.max_batch, self.max_wait = engine, max_batch, max_wait_ms / 1000
        self.metrics = metrics or Metrics()
        self._pending: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        # the last batch run, for _wave_target: its rows, the rows queued when it ended, its end
        self._last_rows, self._queued_at_end, self._last_end = 0, 0, -math.inf
        self._thread = threading.Thread(target=self._loop, name="itemp-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._pending)

    async def submit(self, work: Any) -> Any:
        """Queue ``work`` and await its result (the engine's exception if it failed).
        Cancelling the awaiting task marks the work cancelled."""
        loop = asyncio.get_running_loop()
        item = _Item(work, loop, loop.create_future())
        with self._cond:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            self._pending.append(item)
            self._cond.notify()
        try:
            return await item.future
        except asyncio.CancelledError:
            work.cancelled.set()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Finish what is queued, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[_Item] | None:
        """The next batch (None: stopping and nothing left). Called with the lock held."""
        while not self._pending:
            if self._stopping:
                return None
            self._cond.wait()
        key = self._pending[0].work.batch_key
        cap = max(self._pending[0].arrived, self._last_end) + MAX_WAIT_FACTOR * self.max_wait
        target = self._wave_target()
        while not self._stopping:
            same = [i for i in self._pending if i.work.batch_key == key]
            rows = sum(i.work.rows for i in same)
            now = time.monotonic()
            if rows >= self.max_batch or now >= cap:
                break
            quiet = max(i.arrived for i in same) + self.max_wait
            if rows >= target and now >= quiet:
                break
            self._cond.wait((quiet if rows >= target else cap) - now)
        batch, rest, rows = [], collections.deque(), 0
        for item in self._pending:
            fits = not batch or rows + item.work.rows <= self.max_batch
            if item.work.batch_key == key and fits:
                batch.append(item)
                rows += item.work.rows
            else:
                rest.append(item)
        self._pending = rest
        return batch

    def _wave_target(self) -> int:
        """Rows to wait for (within the cap): right after a batch, the rows that were queued
        when it ended plus its own rows, whose clients are likely to send again (see the module
        docstring); else one."""
        if time.monotonic() - self._last_end > MAX_WAIT_FACTOR * self.max_wait:
            return 1
        return max(1, min(self.max_batch, self._queued_at_end + self._last_rows))

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if batch is None:
                return
            live = [i for i in batch if not i.work.cancelled.is_set()]
            for item in batch:
                if item.work.cancelled.is_set():  # the client went away while it waited
                    self.metrics.add("cancelled", 1)
                    _resolve(item, None, asyncio.CancelledError())
            if live:
                try:
                    self._run(live)
                except BaseException as exc:  # noqa: BLE001 - the worker must outlive any bug
                    log.exception("batch worker error")
                    for item in live:
                        _resolve(item, None, exc)
            with self._cond:
                self._last_rows = sum(i.work.rows for i in live)
                self._queued_at_end = sum(i.work.rows for i in self._pending)
                self._last_end = time.monotonic()

    def _run(self, items: list[_Item]) -> None:
        self.metrics.batch(len(items))
        try:
            results = self.engine.run_batch([i.work for i in items])
        except Exception as exc:  # noqa: BLE001 - reported to the requests, the worker goes on
            if len(items) == 1:
                log.warning("request failed: %s: %s", type(exc).__name__, exc)
                _resolve(items[0], None, exc)
                return
            log.warning("a batch of %d failed (%s); rerunning them one by one", len(items), exc)
            for item in items:
                self._run([item])
            return
        for item, result in zip(items, results, strict=True):
            _resolve(item, result, None)
