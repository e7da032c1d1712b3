"""Durable state: one SQLAlchemy engine per URL, one declarative ``Base`` for every pillar.

SQLite (WAL) is the embedded default; PostgreSQL works through the same models. Each pillar
declares its tables on ``Base`` in its own module; ``open_database()`` creates what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from rempart.errors import StoreError


class Base(DeclarativeBase):
    """Declarative base shared by every table of Rempart."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite, create the parent directory and enable WAL."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        url = "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).expanduser())
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open database: {exc}", where=url.split("@")[-1]) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_database(url: str) -> tuple[Engine, sessionmaker[Any]]:
    """Engine and session factory, with every registered table created if missing."""
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot initialise database: {exc.__class__.__name__}") from None
    return engine, sessionmaker(engine, expire_on_commit=False)
