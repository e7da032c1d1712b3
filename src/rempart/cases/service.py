"""``Cases``: the one object the CLI, the web API and tests use to work on incidents."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from rempart.cases.affected import CSV_COLUMNS, AffectedPeople, compute_affected
from rempart.cases.art33 import build_notification
from rempart.cases.documents import art33_blocks, art34_letter, register_blocks, to_markdown
from rempart.cases.incidents import Incident, IncidentError, IncidentStore
from rempart.cases.ledger import ExposureLedger
from rempart.cases.pdf import write_pdf
from rempart.cases.settings import CasesSettings
from rempart.cases.timeline import Timeline, build_timeline
from rempart.cases.vault import Vault, dpo_key_id, load_private_key, reveal
from rempart.cases.window import AccountWindow, estimate_windows, iso
from rempart.config import Config
from rempart.db import open_database
from rempart.errors import InputError, KeyMaterialError

if TYPE_CHECKING:
    from rempart.ingest.care import CareHistory
    from rempart.protect.tokens import TokenKey


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
        self.ledger = (
            ExposureLedger(archive_dir, ledger_dir=self.settings.ledger_dir)
            if archive_dir is not None
            else None
        )

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
                    reasoning=[*w.reasoning, f"fixée par un analyste : {override['reason']}"],
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

    # -- timeline and documents ----------------------------------------------------------

    def timeline(self, incident: Incident | int) -> Timeline:
        inc = self.store.get(incident) if isinstance(incident, int) else incident
        return build_timeline(
            inc,
            self.windows(inc),
            self.ledger,
            self.sessions,
            self.store.audit_trail(inc.id),
            self.settings,
        )

    def notification(self, incident_id: int, *, now: float | None = None) -> dict[str, Any]:
        """The Art. 33 draft as data (the JSON format; Markdown and PDF render it)."""
        inc = self.store.get(incident_id)
        affected = self.affected(inc)
        return build_notification(
            inc, affected, affected.windows, self.settings, timeline=self.timeline(inc), now=now
        )

    def write_report(
        self, incident_id: int, fmt: str, out: Path, *, actor: str, now: float | None = None
    ) -> Path:
        """Write the Art. 33 draft as ``md``, ``pdf`` or ``json`` to ``out`` (audited)."""
        if fmt not in REPORT_FORMATS:
            raise IncidentError(f"unknown format {fmt!r}", hint=", ".join(REPORT_FORMATS))
        doc = self.notification(incident_id, now=now)
        try:
            if fmt == "json":
                out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
            elif fmt == "md":
                out.write_text(to_markdown(art33_blocks(doc)), encoding="utf-8")
            else:
                write_pdf(
                    out,
                    art33_blocks(doc),
                    title=doc["document"],
                    footer=f"Incident {incident_id} - projet de notification CNIL",
                )
        except OSError as exc:
            raise InputError(f"cannot write the report: {exc.strerror}", where=str(out)) from None
        self.store.record(
            incident_id,
            actor=actor,
            action="report.art33",
            details={"format": fmt, "file": str(out), "sha256": _sha256(out)},
        )
        return out

    def letter(self, incident_id: int) -> str:
        """Art. 34 letter template to the data subjects (French Markdown)."""
        return art34_letter(self.notification(incident_id), self.settings)

    def register(self) -> list[dict[str, Any]]:
        """Art. 33(5) internal register: every incident, notified or not."""
        out = []
        for inc in self.store.list_incidents():
            affected = self.affected(inc)
            windows = affected.windows
            out.append(
                {
                    "id": inc.id,
                    "titre": inc.title,
                    "statut": inc.status,
                    "faits": inc.details.get("nature")
                    or f"Alertes : {', '.join(sorted({a.rule_id for a in inc.alerts}))}",
                    "debut": min((w.start for w in windows), default=inc.first_seen),
                    "fin": max((w.end for w in windows), default=inc.last_seen),
                    "comptes": inc.accounts,
                    "personnes": affected.count,
                    "enregistrements": affected.records,
                    "categories": sorted(affected.people_by_category),
                    "mesures": list(inc.details.get("measures_taken") or [])
                    + (["confinement"] if inc.contained_at else []),
                    "notifie": inc.notified_at,
                    "motif_non_notification": inc.details.get("late_reason")
                    if inc.notified_at is None and inc.status == "closed"
                    else None,
                }
            )
        return out

    def write_register(self, fmt: str, out: Path) -> Path:
        entries = self.register()
        if fmt == "json":
            out.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", "utf-8")
        elif fmt == "md":
            out.write_text(to_markdown(register_blocks(entries)), encoding="utf-8")
        elif fmt == "pdf":
            write_pdf(out, register_blocks(entries), title="Registre des violations")
        else:
            raise IncidentError(f"unknown format {fmt!r}", hint=", ".join(REPORT_FORMATS))
        return out

    # -- Art. 34 export and re-identification --------------------------------------------

    def export_affected(self, incident_id: int, out: Path, *, actor: str) -> AffectedPeople:
        affected = self.affected(incident_id)
        affected.write_csv(out)
        self.store.record(
            incident_id,
            actor=actor,
            action="export.affected",
            details={"file": str(out), "people": affected.count, "sha256": _sha256(out)},
        )
        return affected

    def vault(self) -> Vault:
        """Sealing vault for ingestion (needs ``cases.dpo_public_key``)."""
        if self.settings.dpo_public_key is None:
            raise KeyMaterialError(
                "no DPO public key configured", where="config cases.dpo_public_key"
            )
        return Vault.from_public_key_file(self.sessions, self.settings.dpo_public_key)

    def reidentify(
        self,
        incident_id: int,
        dpo_key: Path,
        out: Path,
        *,
        actor: str,
        passphrase: bytes | None = None,
    ) -> tuple[int, int]:
        """Write token -> identifier for the incident's affected people; audited.

        Returns (re-identified, missing from the vault). Fails (and is audited as a failed
        attempt) when the key does not open the vault.
        """
        affected = self.affected(incident_id)
        try:
            private = load_private_key(dpo_key, passphrase)
            found, missing = reveal(self.sessions, private, affected.tokens)
        except KeyMaterialError as exc:
            self.store.record(
                incident_id,
                actor=actor,
                action="reidentify.refused",
                details={"reason": exc.message, "key_file": str(dpo_key)},
            )
            raise
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["token", "nir", "records", "categories", "first_disclosed"])
                for p in affected.people:
                    writer.writerow(
                        [
                            p.token,
                            found.get(p.token, ""),
                            p.records,
                            ";".join(p.categories),
                            iso(p.first_disclosed),
                        ]
                    )
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", where=str(out)) from None
        self.store.record(
            incident_id,
            actor=actor,
            action="reidentify",
            details={
                "people": affected.count,
                "reidentified": len(found),
                "missing_from_vault": len(missing),
                "file": str(out),
                "dpo_key_id": dpo_key_id(private.public_key()),
            },
        )
        return len(found), len(missing)


REPORT_FORMATS = ("md", "pdf", "json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def token_key(config: Config) -> TokenKey | None:
    """The deployment's token key when there is one (never made here)."""
    from rempart.protect.tokens import resolve_key

    keys = config.keys
    if os.environ.get(keys.token_key_env) or keys.token_key_file.expanduser().exists():
        return resolve_key(env=keys.token_key_env, file=keys.token_key_file)
    return None


def _care_history(config: Config) -> CareHistory | None:
    """The care relationships the engine holds (``care_history`` files, tokenised with the
    deployment's key), for the bundle's replay; None without files or key."""
    key = token_key(config) if config.care_history else None
    if key is None:
        return None
    from rempart.ingest.care import configured_care_history
    from rempart.protect.tokens import Tokenizer

    return configured_care_history(config, Tokenizer(key))


def _redactor(config: Config) -> tuple[Callable[[str], str], str | None]:
    """NIR-shaped runs -> their tokens (same key as ingestion), or ``[NIR]`` without a key."""
    from rempart.ingest.normalise import NIR_LIKE, normalise_identifier
    from rempart.protect.tokens import Tokenizer

    key = token_key(config)
    if key is not None:
        tok = Tokenizer(key)

        def redact(text: str) -> str:
            return NIR_LIKE.sub(lambda m: tok(normalise_identifier(m.group(0))), text)

        return redact, tok.key_id
    return (lambda text: NIR_LIKE.sub("[NIR]", text)), None


def rule_files_of(config: Config) -> list[Path]:
    """Rule files in force: the profile's built-in pack, then extra directories."""
    from rempart.detect.loader import builtin_pack_dir, rule_files

    profile = config.profile if "/" not in config.profile else "tiers-payant"
    return rule_files([builtin_pack_dir(profile), *config.detection.rules])


def write_evidence(cases: Cases, incident_id: int, out: Path, *, actor: str) -> dict[str, Any]:
    """Write the evidence bundle of an incident (audited); returns its manifest."""
    from rempart.cases.evidence import BundleContent, write_bundle

    inc = cases.store.get(incident_id)
    affected = cases.affected(inc)
    ledger = (
        cases.ledger.scoped_disclosures([w.actor_filter(inc.attribution) for w in affected.windows])
        if cases.ledger is not None
        else None
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for p in affected.people:
        writer.writerow(p.to_row())
    redact, key_id = _redactor(cases.config)
    content = BundleContent(
        care=_care_history(cases.config),
        incident={
            **inc.summary(),
            "windows": [w.to_dict() for w in affected.windows],
            "affected": affected.summary(),
            "audit": [e.to_dict() for e in cases.store.audit_trail(inc.id)],
        },
        alerts=inc.alerts,
        ledger=ledger if ledger is not None else pa.table({}),
        affected_csv=buf.getvalue().encode(),
        rule_files=rule_files_of(cases.config),
        profile=cases.config.profile,
        lateness=cases.config.detection.lateness_seconds,
        redact=redact,
        token_key_id=key_id,
    )
    manifest = write_bundle(content, out)
    cases.store.record(
        incident_id,
        actor=actor,
        action="evidence.bundle",
        details={"file": str(out), "sha256": _sha256(out), "alerts": len(inc.alerts)},
    )
    return manifest
