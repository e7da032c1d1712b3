"""The shared store works on a real PostgreSQL server, not only SQLite."""

from __future__ import annotations

from sqlalchemy import text

from rempart.db import open_database


def test_every_table_is_created_on_postgresql(postgres_url):
    # Import every pillar so that all tables are registered on the shared Base.
    import rempart.cases.models
    import rempart.detect.store
    import rempart.respond.tables  # noqa: F401
    from rempart.db import Base

    engine, _ = open_database(postgres_url)
    with engine.connect() as conn:
        names = {
            r[0]
            for r in conn.execute(
                text("select tablename from pg_tables where schemaname = 'public'")
            )
        }
    assert set(Base.metadata.tables) <= names
    assert len(names) >= 3
