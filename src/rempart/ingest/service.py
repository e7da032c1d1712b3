"""Ingestion jobs as library calls (the CLI and the server are thin shells over these)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal, Protocol

from rempart.config import Config
from rempart.events import Event
from rempart.ingest.archive import ArchiveWriter, latest_checkpoint
from rempart.ingest.follow import Follower
from rempart.ingest.normalise import DirectoryEntry, load_directory
from rempart.ingest.pipeline import (
    EventBatch,
    IngestStats,
    LineDecoder,
    iter_batches,
    make_normalizer,
)
from rempart.ingest.profile import RouteProfile, load_profile
from rempart.ingest.quarantine import Quarantine
from rempart.ingest.sources import input_paths
from rempart.protect.tokens import Tokenizer, resolve_key

Format = Literal["auto", "combined", "jsonl"]
_log = logging.getLogger("rempart.ingest")


class Sealer(Protocol):
    def add(self, token: str, identifier: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class IngestRequest:
    paths: list[str]
    profile: RouteProfile
    tokenizer: Tokenizer
    archive: Path | None = None
    fmt: Format = "auto"
    json_mapping: dict[str, str] | None = None
    time_format: str = "iso8601"
    directory: dict[str, DirectoryEntry] | None = None
    quarantine_dir: Path | None = None
    #: Care relationship CSVs for the detection engine (``rempart.ingest.care``).
    care_history: list[Path] = field(default_factory=list)
    #: Re-identification vault (``rempart.cases.vault.Vault``): seals each beneficiary id met
    #: with the DPO's public key. Set from ``cases.dpo_public_key``; closed by the runs.
    vault: Sealer | None = None

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        paths: list[str] | None = None,
        profile: str | None = None,
        archive: Path | None = None,
        fmt: Format | None = None,
        directory: Path | None = None,
        quarantine_dir: Path | None = None,
        care_history: list[Path] | None = None,
    ) -> IngestRequest:
        key = resolve_key(env=cfg.keys.token_key_env, file=cfg.keys.token_key_file)
        vault: Sealer | None = None
        if cfg.cases.dpo_public_key is not None:
            from rempart.cases.vault import Vault
            from rempart.db import open_database

            _engine, sessions = open_database(cfg.state.url)
            vault = Vault.from_public_key_file(sessions, cfg.cases.dpo_public_key.expanduser())
        dir_path = directory or cfg.directory
        mapping = cfg.json_mapping
        return cls(
            paths=list(paths) if paths else [s.path for s in cfg.sources],
            profile=load_profile(profile or cfg.profile),
            tokenizer=Tokenizer(key),
            archive=archive,
            fmt=fmt or (cfg.sources[0].format if cfg.sources else "auto"),
            json_mapping=dict(mapping.fields) if mapping else None,
            time_format=mapping.time_format if mapping else "iso8601",
            directory=load_directory(dir_path) if dir_path else None,
            quarantine_dir=quarantine_dir or cfg.state.quarantine_dir.expanduser(),
            vault=vault,
            care_history=[p.expanduser() for p in (care_history or cfg.care_history)],
        )

    @property
    def sealer(self) -> Callable[[str, str], None] | None:
        return self.vault.add if self.vault is not None else None

    def batches(
        self,
        quarantine: Quarantine,
        stats: IngestStats,
        *,
        keep_actions: frozenset[str] | None = None,
        seal: bool = False,
    ) -> Iterator[EventBatch]:
        """``iter_batches`` over this request's inputs and options (``seal``: give each
        beneficiary id met to the DPO vault, as ingestion does)."""
        return iter_batches(
            input_paths(self.paths),
            profile=self.profile,
            tokenizer=self.tokenizer,
            quarantine=quarantine,
            fmt=self.fmt,
            json_mapping=self.json_mapping,
            time_format=self.time_format,
            directory=self.directory,
            stats=stats,
            keep_actions=keep_actions,
            sealer=self.sealer if seal else None,
        )

    def close(self) -> None:
        if self.vault is not None:
            self.vault.close()


@dataclass
class IngestResult:
    stats: IngestStats
    quarantine_file: Path | None
    archive_files: list[Path] = field(default_factory=list)


def run_ingest(request: IngestRequest, *, progress: bool = False) -> IngestResult:
    """Read every input once; archive events if asked; quarantine bad lines."""
    quarantine = Quarantine(request.quarantine_dir)
    stats = IngestStats()
    writer = ArchiveWriter(request.archive) if request.archive else None
    batches = request.batches(quarantine, stats, seal=True)
    if progress:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
        ) as bar:
            task = bar.add_task("reading", total=None)
            for batch in batches:
                if writer is not None:
                    writer.add_table(batch.table)
                bar.update(task, description=f"reading {batch.source}: {stats.lines:,} lines")
    else:
        for batch in batches:
            if writer is not None:
                writer.add_table(batch.table)
    if writer is not None:
        writer.close()
    quarantine.close()
    request.close()
    return IngestResult(stats, quarantine.path, writer.files if writer else [])


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _sig: int, _frame: FrameType | None) -> None:
        self.requested = True


class FollowedSource:
    """Followed files as events: the follower, the decoder and per-file format detection.

    ``poll()`` returns the events of the complete lines written since the last call (bad lines
    go to quarantine); ``checkpoint()`` is the position to store atomically with what was done
    with those events (the archive part, the engine state).
    """

    def __init__(self, request: IngestRequest, checkpoint: dict[str, Any] | None):
        self.follower = Follower([Path(p).expanduser() for p in request.paths], checkpoint)
        normalizer = make_normalizer(
            request.profile, request.tokenizer, request.directory, request.sealer
        )
        self.quarantine = Quarantine(request.quarantine_dir, redact=normalizer.redact_bytes)
        self.decoder = LineDecoder(
            normalizer,
            self.quarantine,
            fmt=request.fmt,
            json_mapping=request.json_mapping,
            time_format=request.time_format,
        )
        self._formats: dict[str, Format] = {}
        #: Lines handed out so far (events + quarantined + blank).
        self.lines = 0

    def poll(self) -> list[Event] | None:
        """Events of new lines, in file order; ``None`` when no file had anything new."""
        chunks = self.follower.poll()
        for note in self.follower.notes():
            # Possible loss or re-read around a rotation: never silent.
            _log.warning(note)
        if not chunks:
            return None
        out: list[Event] = []
        for chunk in chunks:
            key = chunk.source.rsplit("@", 1)[0]
            fmt = self._formats.get(key)
            if fmt is None:
                first = next((ln for ln in chunk.lines if ln.strip()), b"")
                fmt = self._formats[key] = self.decoder.detect_format(first)
            self.lines += len(chunk.lines)
            out += self.decoder.decode(
                chunk.source, chunk.first_line, chunk.lines, fmt, complete=chunk.complete
            )
        return out

    def checkpoint(self) -> dict[str, Any]:
        self.quarantine.flush()
        return self.follower.checkpoint()

    def close(self) -> None:
        self.follower.close()
        self.quarantine.close()


def run_follow(
    request: IngestRequest,
    *,
    poll_interval: float = 0.2,
    flush_interval: float = 1.0,
    idle_exit: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IngestStats:
    """Tail the inputs into the archive until SIGTERM/SIGINT (or ``idle_exit`` seconds idle).

    Exactly once: each part file carries the follower checkpoint for the lines it holds, and the
    follower restarts from the newest part's checkpoint.
    """
    if request.archive is None:
        from rempart.errors import ConfigError

        raise ConfigError("follow mode needs an archive directory (--archive)")
    source = FollowedSource(request, latest_checkpoint(request.archive))
    writer = ArchiveWriter(request.archive, split_days=False)
    stats = IngestStats(sources=[str(p) for p in request.paths])
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    dirty = False
    last_flush = last_data = time.monotonic()
    try:
        while not stop.requested:
            events = source.poll()
            now = time.monotonic()
            if events is not None:
                stats.observe(events)
                writer.add(events)
                dirty = True
                last_data = now
            if dirty and now - last_flush >= flush_interval:
                writer.flush(checkpoint=source.checkpoint())
                dirty = False
                last_flush = now
                if on_progress is not None:
                    on_progress(writer.rows_written)
            if idle_exit is not None and now - last_data >= idle_exit:
                break
            if events is None:
                time.sleep(poll_interval)
    finally:
        if dirty:
            writer.flush(checkpoint=source.checkpoint())
        request.close()
        source.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats.lines = source.lines
    stats.quarantined = source.quarantine.counts
    return stats
