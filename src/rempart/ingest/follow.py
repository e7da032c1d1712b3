"""Follow mode: tail files across rotation with a durable checkpoint, exactly once.

Each followed path has a state: the identity of the file generation being read (device, inode,
and a fingerprint = SHA-256 of its first bytes, which also detects inode reuse), the byte offset
just after the last complete line handed out, and that line's number.

- Rotation by rename (logrotate ``create``): when the path names a new inode, the old file is
  drained to its end (its last line even without a newline), then the new file is read from 0.
- Rotation by copy and truncate (``copytruncate``): when the file shrinks below our offset, the
  rest of the old content is taken from the rotated copy (a sibling whose fingerprint matches),
  then the truncated file is read from 0.
- Restart: the checkpoint is matched against the current file, then against rotated siblings
  (``name.1``, ``name-20261129``, ``.gz`` too), so lines written while Rempart was down are read.

The follower never commits anything itself: the caller stores ``checkpoint()`` atomically with
the output of the lines it handed out (the archive keeps it in the metadata of each part file),
which makes a crash at any point lose nothing and count nothing twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rempart.ingest.sources import open_binary

FP_BYTES = 1024
READ_CHUNK = 4 << 20


@dataclass
class FileState:
    path: str
    dev: int = 0
    ino: int = 0
    fp: str = ""
    fp_len: int = 0
    offset: int = 0
    line: int = 0


def _fingerprint(fh: BinaryIO, length: int) -> str:
    fh.seek(0)
    return hashlib.sha256(fh.read(length)).hexdigest()


@dataclass
class Chunk:
    """Complete lines from one file generation, with the line number of the first."""

    source: str
    first_line: int
    lines: list[bytes]
    complete: bool = True


class _Tail:
    """One followed path."""

    def __init__(self, path: Path, saved: dict[str, Any] | None):
        self.path = path
        self.state = FileState(str(path))
        self.fh: BinaryIO | None = None
        self._saved = FileState(**saved) if saved else None
        self.notes: list[str] = []

    @property
    def source(self) -> str:
        return f"{self.path}@{self.state.ino}"

    def _open_current(self) -> bool:
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        self.fh = fh
        self.state = FileState(str(self.path), st.st_dev, st.st_ino)
        self._refresh_fp()
        return True

    def _refresh_fp(self) -> None:
        assert self.fh is not None
        size = os.fstat(self.fh.fileno()).st_size
        if self.state.fp_len < FP_BYTES and size > self.state.fp_len:
            n = min(size, FP_BYTES)
            self.state.fp = _fingerprint(self.fh, n)
            self.state.fp_len = n

    def _siblings(self) -> list[Path]:
        parent = self.path.parent
        name = self.path.name
        out = [p for p in parent.glob(name + "*") if p != self.path and p.is_file()]
        out += [
            p for p in parent.glob(name.rsplit(".", 1)[0] + "-*") if p.is_file() and p not in out
        ]
        return sorted(out)

    def _find_generation(self, saved: FileState) -> Path | None:
        for cand in [self.path, *self._siblings()]:
            try:
                with open_binary(cand) as fh:
                    if saved.fp_len and _fingerprint(fh, saved.fp_len) == saved.fp:
                        return cand
            except Exception:  # noqa: S112 - unreadable sibling: not ours
                continue
        return None

    def _read_rest(
        self, fh: BinaryIO, state: FileState, source: str, *, final: bool
    ) -> list[Chunk]:
        """Complete lines from ``state.offset`` on (and the unterminated tail when ``final``).

        A line still being written (no newline yet) is left for the next poll.
        """
        chunks: list[Chunk] = []
        if fh.seekable():
            fh.seek(state.offset)
        else:
            _skip(fh, state.offset)
        pending = b""
        while True:
            data = fh.read(READ_CHUNK)
            if not data:
                break
            if pending:
                data = pending + data
            end = data.rfind(b"\n")
            if end < 0:
                pending = data
                continue
            lines = data[:end].split(b"\n")
            chunks.append(Chunk(source, state.line + 1, lines))
            state.offset += end + 1
            state.line += len(lines)
            pending = data[end + 1 :]
        if pending and final:
            chunks.append(Chunk(source, state.line + 1, [pending], complete=False))
            state.offset += len(pending)
            state.line += 1
        return chunks

    def poll(self) -> list[Chunk]:
        out: list[Chunk] = []
        if self.fh is None:
            saved, self._saved = self._saved, None
            if saved is not None and saved.fp_len:
                where = self._find_generation(saved)
                if where is None:
                    self.notes.append(
                        f"{self.path}: the checkpointed file was not found; reading the current "
                        "file from its beginning"
                    )
                elif where == self.path:
                    if not self._open_current():
                        return out
                    self.state.offset, self.state.line = saved.offset, saved.line
                else:
                    with open_binary(where) as old:
                        out += self._read_rest(old, saved, f"{self.path}@{saved.ino}", final=True)
            if self.fh is None and not self._open_current():
                return out
        assert self.fh is not None
        out += self._read_rest(self.fh, self.state, self.source, final=False)
        self._refresh_fp()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return out  # renamed away, new file not created yet: next poll
        if (st.st_dev, st.st_ino) != (self.state.dev, self.state.ino):
            # Rotated by rename: finish the old generation, then start the new one.
            out += self._read_rest(self.fh, self.state, self.source, final=True)
            self.fh.close()
            self.fh = None
            if self._open_current():
                out += self._read_rest(self.fh, self.state, self.source, final=False)  # type: ignore[arg-type]
        elif st.st_size < self.state.offset:
            # Copied then truncated: the tail we had not read is in the rotated copy.
            old_state = FileState(**asdict(self.state))
            where = self._find_generation(old_state)
            if where is not None and where != self.path:
                with open_binary(where) as old:
                    out += self._read_rest(old, old_state, self.source, final=True)
            else:
                self.notes.append(f"{self.path}: truncated and no rotated copy found")
            self.fh.close()
            self.fh = None
            if self._open_current():
                self.state.line = 0
                out += self._read_rest(self.fh, self.state, self.source, final=False)  # type: ignore[arg-type]
        return out


def _skip(fh: BinaryIO, offset: int) -> None:
    """Position a non-seekable (compressed) stream at ``offset`` by reading from the start."""
    remaining = offset
    while remaining > 0:
        got = fh.read(min(remaining, READ_CHUNK))
        if not got:
            return
        remaining -= len(got)


class Follower:
    """Follows several paths; ``poll()`` returns new complete lines, ``checkpoint()`` the state."""

    def __init__(self, paths: list[Path], checkpoint: dict[str, Any] | None = None):
        saved = (checkpoint or {}).get("files", {})
        self.tails = [_Tail(p, saved.get(str(p))) for p in paths]

    def poll(self) -> list[Chunk]:
        out: list[Chunk] = []
        for tail in self.tails:
            out += tail.poll()
        return out

    def notes(self) -> list[str]:
        out: list[str] = []
        for tail in self.tails:
            out += tail.notes
            tail.notes = []
        return out

    def checkpoint(self) -> dict[str, Any]:
        return {"files": {str(t.path): asdict(t.state) for t in self.tails}}

    def close(self) -> None:
        for tail in self.tails:
            if tail.fh is not None:
                tail.fh.close()
