"""Reading inputs without loss: plain, gzip and zstd files, stdin; lines with their numbers.

Lines are read as bytes in large chunks; decoding and validation happen in the pipeline so that a
bad line is quarantined with its exact origin instead of breaking the read.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from rempart.errors import InputError

CHUNK = 4 << 20


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing ``.gz`` and ``.zst`` transparently."""
    try:
        if path.suffix == ".gz":
            return cast(BinaryIO, gzip.open(path, "rb"))
        if path.suffix in (".zst", ".zstd"):
            raw = path.open("rb")
            return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
        return path.open("rb")
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a log file", where=str(path)) from None
    except PermissionError:
        raise InputError("permission denied", where=str(path)) from None


def iter_line_chunks(
    stream: BinaryIO, *, where: str, first_line: int = 1, chunk_size: int = CHUNK
) -> Iterator[tuple[int, list[bytes], bool]]:
    """Yield ``(number of the first line, lines without their newline, last_is_complete)``.

    The final element of the last chunk may lack a newline (``last_is_complete`` False): it is
    still yielded, the caller decides (a truncated last line is quarantined, not dropped).
    """
    lineno = first_line
    pending = b""
    while True:
        try:
            data = stream.read(chunk_size)
        except (OSError, EOFError, zstandard.ZstdError) as exc:
            raise InputError(
                f"cannot read (corrupt or truncated archive?): {exc}", where=where
            ) from None
        if not data:
            break
        if pending:
            data = pending + data
        lines = data.split(b"\n")
        pending = lines.pop()
        if lines:
            yield lineno, lines, True
            lineno += len(lines)
    if pending:
        yield lineno, [pending], False


def input_paths(specs: list[str]) -> list[Path]:
    """Expand the command-line inputs (globs allowed); ``-`` is stdin."""
    out: list[Path] = []
    for spec in specs:
        if spec == "-":
            out.append(Path("-"))
            continue
        p = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            matches = sorted(p.parent.glob(p.name))
            if not matches:
                raise InputError("no file matches", where=spec)
            out.extend(matches)
        else:
            if not p.exists():
                raise InputError("file not found", where=spec)
            if p.is_dir():
                raise InputError("is a directory, not a log file", where=spec)
            out.append(p)
    return out


def open_input(path: Path) -> tuple[str, BinaryIO]:
    """(source name, byte stream) for a path or ``-``."""
    if str(path) == "-":
        return "stdin", sys.stdin.buffer if hasattr(sys.stdin, "buffer") else io.BytesIO()
    return str(path), open_binary(path)
