"""The bounded queue between event sources and the engine, and the followed-file reader.

The queue counts *events*, not batches, and never grows past its capacity: HTTP ingest offers a
whole request at once (all accepted or all refused, so a client retrying after 429 neither loses
nor duplicates events); followed files wait for room instead (back-pressure: a file is not lost
when the engine is busy, it is read later).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rempart.events import Event


@dataclass(slots=True)
class QueuedBatch:
    events: list[Event]
    #: Wall-clock time the batch was accepted (for the ingest-to-decision latency).
    accepted_at: float
    #: Called by the worker once every event of the batch has been processed.
    done: Callable[[], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BoundedEventQueue:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: deque[QueuedBatch] = deque()
        self._size = 0
        self._cond = threading.Condition()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def offer(self, batch: QueuedBatch) -> bool:
        """Accept the whole batch now, or refuse it (queue full): never partial."""
        n = len(batch.events)
        with self._cond:
            if self._closed or (self._size + n > self.capacity and self._size > 0):
                return False
            self._items.append(batch)
            self._size += n
            self._cond.notify()
            return True

    def put(self, batch: QueuedBatch, stop: threading.Event | None = None) -> bool:
        """Wait for room (back-pressure); False only when closed or ``stop`` is set."""
        n = len(batch.events)
        with self._cond:
            while not self._closed and self._size + n > self.capacity and self._size > 0:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.1)
            if self._closed:
                return False
            self._items.append(batch)
            self._size += n
            self._cond.notify()
            return True

    def get(self, timeout: float) -> QueuedBatch | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            batch = self._items.popleft()
            self._size -= len(batch.events)
            self._cond.notify_all()
            return batch

    def close(self) -> None:
        """Refuse new batches; what is queued stays to be drained."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def retry_after(self, drain_rate: float) -> int:
        """Seconds a refused client should wait, from the current backlog and drain rate."""
        if drain_rate <= 0:
            return 1
        return max(1, min(60, int(self._size / drain_rate) + 1))


class FileFollower(threading.Thread):
    """Tails configured files (rotation-safe, :class:`rempart.ingest.follow.Follower`) into the
    queue. The checkpoint is saved only after the engine processed the lines it covers."""

    def __init__(
        self,
        paths: list[Path],
        decode: Callable[[str, int, list[bytes], bool], list[Event]],
        queue: BoundedEventQueue,
        *,
        interval: float,
        checkpoint: dict[str, Any] | None = None,
        save_checkpoint: Callable[[dict[str, Any]], None] | None = None,
        start_at: Literal["start", "end"] = "start",
    ):
        super().__init__(name="rempart-follow", daemon=True)
        from rempart.ingest.follow import Follower

        self._follower = Follower(paths, checkpoint)
        self._decode = decode
        self._queue = queue
        self._interval = interval
        self._save = save_checkpoint
        self.stop_event = threading.Event()
        self.lines = 0
        if checkpoint is None and start_at == "end":
            self._follower.poll()  # skip history: live traffic only

    def run(self) -> None:
        while not self.stop_event.is_set():
            chunks = self._follower.poll()
            if not chunks:
                self.stop_event.wait(self._interval)
                continue
            for index, chunk in enumerate(chunks):
                self.lines += len(chunk.lines)
                final_chunk = index == len(chunks) - 1
                # slices no larger than the queue, so that it stays within its capacity
                step = max(1, min(self._queue.capacity, 10_000))
                n = len(chunk.lines)
                for start in range(0, n, step):
                    part = chunk.lines[start : start + step]
                    last = start + step >= n
                    events = self._decode(
                        chunk.source, chunk.first_line + start, part, chunk.complete or not last
                    )
                    # the position (after everything this poll returned) is saved only once all
                    # of it has been processed
                    done = (
                        functools.partial(self._saved, self._follower.checkpoint())
                        if last and final_chunk
                        else None
                    )
                    if not self._queue.put(QueuedBatch(events, time.time(), done), self.stop_event):
                        return

    def _saved(self, checkpoint: dict[str, Any]) -> None:
        if self._save is not None:
            self._save(checkpoint)

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout)
        self._follower.close()
