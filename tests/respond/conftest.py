from __future__ import annotations

from pathlib import Path

import pytest
from respond_helpers import FakeClock
from sqlalchemy.orm import Session, sessionmaker

from rempart.db import open_database
from rempart.respond.store import DecisionStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    _, factory = open_database(f"sqlite:///{tmp_path / 'state.db'}")
    return factory


@pytest.fixture
def store(sessions: sessionmaker[Session], clock: FakeClock) -> DecisionStore:
    return DecisionStore(sessions, clock)
