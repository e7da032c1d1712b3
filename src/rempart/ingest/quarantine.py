"""Quarantine: malformed lines are counted by reason and set aside with their origin.

Each record is one JSON line: source, line number, reason, detail, the byte length and SHA-256
of the original line, and its content with NIR-shaped runs replaced by tokens (so the quarantine
holds no raw NIR), cut to ``keep_bytes`` (the hash and origin identify the full line).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


class Quarantine:
    def __init__(
        self,
        directory: Path | None,
        *,
        redact: Callable[[bytes], bytes] | None = None,
        keep_bytes: int = 65_536,
        run_name: str | None = None,
    ):
        self.directory = directory
        self.redact = redact
        self.keep_bytes = keep_bytes
        self.counts: Counter[str] = Counter()
        self.run_name = run_name or datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._fh: IO[str] | None = None
        self.path: Path | None = None

    def add(self, source: str, line: int, reason: str, detail: str, raw: bytes) -> None:
        self.counts[reason] += 1
        if self.directory is None:
            return
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = self.directory / f"quarantine-{self.run_name}.jsonl"
            self._fh = self.path.open("a", encoding="utf-8")
        kept = raw[: self.keep_bytes]
        if self.redact is not None:
            kept = self.redact(kept)
        record = {
            "source": source,
            "line": line,
            "reason": reason,
            "detail": detail,
            "length": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "content": kept.decode("utf-8", "backslashreplace"),
            "content_cut": len(raw) > self.keep_bytes,
        }
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
