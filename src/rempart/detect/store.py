"""Durable engine state: checkpoints in SQLite (or PostgreSQL) through SQLAlchemy.

The state is what ``Engine.dump_state()`` returns: baselines, first-seen histories, open
windows, open alerts, held events. It is encoded with msgspec MessagePack (never pickle) and
stored in parts: one row per rule (and for the beneficiary history, one row per shard of
accounts) so that no single value grows past what a database row comfortably holds. A
checkpoint replaces the previous one in a single transaction.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
from sqlalchemy import Integer, LargeBinary, String, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, open_database
from rempart.errors import StoreError

HISTORY_SHARDS = 64
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class EngineCheckpoint(Base):
    """One part of the detection engine's checkpoint."""

    __tablename__ = "detect_checkpoint"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def _split(state: dict[str, Any]) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = []
    for key, value in state.items():
        if key in ("rules", "risks", "campaigns"):
            parts.extend((f"{key}/{rid}", v) for rid, v in value.items())
        elif key == "history":
            shards: list[dict[str, bytes]] = [{} for _ in range(HISTORY_SHARDS)]
            for acc, raw in value.items():
                shards[zlib.crc32(acc.encode()) % HISTORY_SHARDS][acc] = raw
            parts.extend((f"history/{i}", s) for i, s in enumerate(shards) if s)
        else:
            parts.append((key, value))
    return parts


def _join(rows: list[tuple[str, bytes]]) -> dict[str, Any]:
    state: dict[str, Any] = {"rules": {}, "risks": {}, "campaigns": {}, "history": {}}
    for part, data in rows:
        value = _decoder.decode(data)
        group, _, sub = part.partition("/")
        if group in ("rules", "risks", "campaigns"):
            state[group][sub] = value
        elif group == "history":
            state["history"].update(value)
        else:
            state[part] = value
    return state


class StateStore:
    """Save and load engine checkpoints under a name (one per engine / deployment)."""

    def __init__(self, url: str, name: str = "default"):
        self.url = url
        self.name = name
        self.engine, self.sessions = open_database(url)

    def save(self, state: dict[str, Any]) -> int:
        """Replace the checkpoint; returns the number of bytes written."""
        rows = [(part, _encoder.encode(value)) for part, value in _split(state)]
        try:
            with self.sessions.begin() as s:
                s.execute(delete(EngineCheckpoint).where(EngineCheckpoint.name == self.name))
                s.add_all(EngineCheckpoint(name=self.name, part=p, data=d) for p, d in rows)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot save detection state: {exc.__class__.__name__}",
                where=self.url.split("@")[-1],
            ) from None
        return sum(len(d) for _p, d in rows)

    def load(self) -> dict[str, Any] | None:
        """The last checkpoint, or None when there is none."""
        try:
            with self.sessions() as s:
                rows = s.execute(
                    select(EngineCheckpoint.part, EngineCheckpoint.data).where(
                        EngineCheckpoint.name == self.name
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot read detection state: {exc.__class__.__name__}",
                where=self.url.split("@")[-1],
            ) from None
        if not rows:
            return None
        try:
            return _join([(p, d) for p, d in rows])
        except msgspec.DecodeError as exc:
            raise StoreError(f"detection state is corrupt: {exc}", where=self.name) from None

    def close(self) -> None:
        self.engine.dispose()
