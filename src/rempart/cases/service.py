"""``Cases``: the one object the CLI, the web API and tests use to work on incidents."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from rempart.cases.affected import AffectedPeople, compute_affected
from rempart.cases.incidents import Incident, IncidentStore
from rempart.cases.ledger import ExposureLedger
from rempart.cases.settings import CasesSettings
from rempart.cases.window import AccountWindow, estimate_windows
from rempart.config import Config
from rempart.db import open_database


class Cases:
    """Incidents (SQL state) + exposure ledger (Parquet archive) + settings."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        archive_dir: Path | None,
        settings: CasesSettings | None = None,
        *,
        config: Config | None = None,
    ) -> None:
        self.settings = settings or CasesSettings()
        self.config = config or Config(cases=self.settings)
        self.sessions = sessions
        self.store = IncidentStore(sessions, self.settings)
        self.ledger = ExposureLedger(archive_dir) if archive_dir is not None else None

    @classmethod
    def from_config(cls, config: Config) -> Cases:
        import rempart.cases.models  # noqa: F401  (registers the tables before create_all)

        _engine, sessions = open_database(config.state.url)
        return cls(sessions, config.state.archive_dir, config.cases, config=config)

    @classmethod
    def open(
        cls, url: str, archive_dir: Path | None, settings: CasesSettings | None = None
    ) -> Cases:
        import rempart.cases.models  # noqa: F401

        _engine, sessions = open_database(url)
        return cls(sessions, archive_dir, settings)

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # -- windows and affected people -----------------------------------------------------

    def windows(self, incident: Incident | int) -> list[AccountWindow]:
        """Estimated windows, replaced by the analyst's where one was set."""
        inc = self.store.get(incident) if isinstance(incident, int) else incident
        estimated = estimate_windows(
            self.ledger, inc.alerts, inc.accounts, self.settings, contained_at=inc.contained_at
        )
        out: list[AccountWindow] = []
        for w in estimated:
            override = inc.window_override.get(w.account)
            if override:
                w = replace(
                    w,
                    start=float(override["start"]),
                    end=float(override["end"]),
                    origin="analyst",
                    reasoning=[*w.reasoning, f"set by an analyst: {override['reason']}"],
                )
            out.append(w)
        return out

    def affected(
        self, incident: Incident | int, *, exclude_served_before: bool | None = None
    ) -> AffectedPeople:
        inc = self.store.get(incident) if isinstance(incident, int) else incident
        exclude = (
            self.settings.exclude_served_before
            if exclude_served_before is None
            else exclude_served_before
        )
        windows = self.windows(inc)
        if self.ledger is None:
            return AffectedPeople(inc.id, inc.attribution, exclude, windows)
        return compute_affected(
            self.ledger,
            inc.id,
            windows,
            attribution=inc.attribution,
            exclude_served_before=exclude,
            served_before_days=self.settings.served_before_days,
        )
