"""``rempart incident``: incidents, affected people, breach documents, evidence, re-identification.

Thin shell over :mod:`rempart.cases`. Options that say where state lives (``--config``,
``--db``, ``--archive``) and who acts (``--actor``) come before the sub-command:
``rempart incident --archive ./archive list``.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rempart.cli._common import CONFIG_OPTION, console, get_config, print_json
from rempart.errors import InputError

if TYPE_CHECKING:
    from rempart.alerts import Alert
    from rempart.cases.service import Cases

incident_app = typer.Typer(
    help="Incidents: affected people, CNIL Art. 33 drafts, Art. 34 export, evidence.",
    no_args_is_help=True,
)


@dataclass
class _State:
    config: Path | None
    db: str | None
    archive: Path | None
    actor: str

    def cases(self) -> Cases:
        from rempart.cases.service import Cases

        cfg = get_config(self.config)
        state = cfg.state
        if self.db or self.archive:
            state = state.model_copy(
                update={
                    "url": self.db or state.url,
                    "archive_dir": self.archive or state.archive_dir,
                }
            )
            cfg = cfg.model_copy(update={"state": state})
        return Cases.from_config(cfg)


@incident_app.callback()
def _options(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    db: str | None = typer.Option(None, "--db", help="State database URL (overrides config)."),
    archive: Path | None = typer.Option(
        None, "--archive", help="Event archive directory (overrides config)."
    ),
    actor: str | None = typer.Option(
        None, "--actor", help="Who acts, for the audit trail (default: login name)."
    ),
) -> None:
    ctx.obj = _State(config, db, archive, actor or _login())


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _st(ctx: typer.Context) -> _State:
    state: _State = ctx.obj
    return state


def read_alerts(path: Path) -> tuple[list[Alert], list[str]]:
    """Alerts of a ``hunt --out`` JSONL file, and one message per unreadable line."""
    from rempart.alerts import Alert

    alerts: list[Alert] = []
    bad: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read alerts: {exc}", where=str(path)) from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            alerts.append(Alert.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            bad.append(f"{path}:{n}: not an alert ({exc.__class__.__name__}: {exc})")
    return alerts, bad


@incident_app.command("open-from-alerts")
def open_from_alerts(
    ctx: typer.Context,
    alerts_file: Path = typer.Argument(..., help="Alerts JSONL (rempart hunt --out)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Group alerts into incidents (new ones, or added to open ones)."""
    alerts, bad = read_alerts(alerts_file)
    for msg in bad:
        typer.echo(f"skipped {msg}", err=True)
    cases = _st(ctx).cases()
    result = cases.store.open_from_alerts(alerts, actor=_st(ctx).actor)
    summary = {
        "alerts_read": len(alerts),
        "lines_skipped": len(bad),
        "created": result.created,
        "updated": result.updated,
        "alerts_added": result.alerts_added,
        "alerts_updated": result.alerts_updated,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{len(alerts)} alert(s): {len(result.created)} new incident(s) {result.created}, "
        f"{len(result.updated)} updated {result.updated}"
    )


@incident_app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Incidents, oldest first."""
    from rich.table import Table

    incidents = _st(ctx).cases().store.list_incidents(status)
    if as_json:
        print_json([i.summary() for i in incidents])
        return
    table = Table("id", "status", "severity", "title", "accounts", "first seen", "alerts")
    for i in incidents:
        accts = ", ".join(i.accounts[:3]) + (
            f" +{len(i.accounts) - 3}" if len(i.accounts) > 3 else ""
        )
        s = i.summary()
        table.add_row(
            str(i.id), i.status, i.severity, i.title, accts, s["first_seen"], str(len(i.alerts))
        )
    console.print(table)


@incident_app.command("show")
def show(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """An incident: alerts, windows with their reasoning, affected people, timeline, audit."""
    cases = _st(ctx).cases()
    inc = cases.store.get(incident_id)
    affected = cases.affected(inc)
    timeline = cases.timeline(inc)
    data: dict[str, Any] = {
        **inc.summary(),
        "assignee": inc.assignee,
        "attribution": inc.attribution,
        "affected": affected.summary(),
        "alerts": [a.to_dict() for a in inc.alerts],
        "timeline": timeline.to_dict(),
        "audit": [e.to_dict() for e in cases.store.audit_trail(inc.id)],
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]Incident {inc.id}[/bold] {inc.title}")
    console.print(f"status {inc.status}, severity {inc.severity}, assignee {inc.assignee or '-'}")
    console.print(f"accounts: {', '.join(inc.accounts) or '-'}; IPs: {', '.join(inc.ips) or '-'}")
    for a in inc.alerts:
        console.print(f"  alert {a.id} {a.rule_id} ({a.severity.value}) {a.entity}: {a.title}")
    for w in affected.windows:
        d = w.to_dict()
        console.print(f"[bold]window[/bold] {w.account}: {d['start']} -> {d['end']} ({w.origin})")
        for r in w.reasoning:
            console.print(f"    - {r}", soft_wrap=True, markup=False)
    console.print(
        f"[bold]affected[/bold]: {affected.count} people, {affected.records} records "
        f"(attribution {affected.attribution})"
    )
    for cat, n in sorted(affected.people_by_category.items()):
        console.print(f"    {cat}: {n}")
    console.print("[bold]timeline[/bold]")
    for e in timeline.entries[:200]:
        console.print(f"  {e.to_dict()['at']}  {e.kind:<13} {e.text}", markup=False, soft_wrap=True)
    if len(timeline.entries) > 200:
        console.print(f"  ... {len(timeline.entries) - 200} more (use --json)")
    peak = max(timeline.read_rate, key=lambda r: r[2], default=None)
    if peak is not None:
        console.print(f"  peak read rate: {peak[2]} disclosures/hour by the actor on {peak[1]}")


@incident_app.command("affected")
def affected_cmd(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the export (CSV, tokens)."),
    exclude_served_before: bool | None = typer.Option(
        None,
        "--exclude-served-before/--include-served-before",
        help="Leave out people the account served before its window (default: config).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Affected people of an incident (exact, from the exposure ledger)."""
    cases = _st(ctx).cases()
    affected = cases.affected(incident_id, exclude_served_before=exclude_served_before)
    if out is not None:
        affected.write_csv(out)
        cases.store.record(
            incident_id,
            actor=_st(ctx).actor,
            action="export.affected",
            details={"file": str(out), "people": affected.count},
        )
    if as_json:
        print_json(affected.summary())
        return
    console.print(f"{affected.count} people, {affected.records} records")
    for cat, n in sorted(affected.people_by_category.items()):
        console.print(f"  {cat}: {n} people, {affected.records_by_category[cat]} records")
    if affected.exclude_served_before:
        console.print(f"  left out (served before the window): {affected.excluded}")
    if out is not None:
        console.print(f"written {out} (tokens only)")


@incident_app.command("report")
def report(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    fmt: str = typer.Option("md", "--format", "-f", help="md, pdf or json."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Default: incident-ID-art33.FMT"),
) -> None:
    """Art. 33 notification draft for the CNIL (French)."""
    target = out or Path(f"incident-{incident_id}-art33.{fmt}")
    _st(ctx).cases().write_report(incident_id, fmt, target, actor=_st(ctx).actor)
    console.print(f"written {target}")


@incident_app.command("letter")
def letter(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    out: Path | None = typer.Option(None, "--out", "-o"),
) -> None:
    """Art. 34 letter template to the data subjects (French Markdown)."""
    text = _st(ctx).cases().letter(incident_id)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"written {out}")


@incident_app.command("register")
def register_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option("md", "--format", "-f", help="md, pdf or json."),
    out: Path = typer.Option(Path("registre-violations.md"), "--out", "-o"),
) -> None:
    """Art. 33(5) internal register of breaches (every incident, notified or not)."""
    _st(ctx).cases().write_register(fmt, out)
    console.print(f"written {out}")


@incident_app.command("evidence")
def evidence(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Default: incident-ID-evidence.tar.gz"
    ),
) -> None:
    """Evidence bundle: alerts, redacted raw lines, rule hashes, input hashes, ledger extract."""
    from rempart.cases.service import write_evidence

    target = out or Path(f"incident-{incident_id}-evidence.tar.gz")
    manifest = write_evidence(_st(ctx).cases(), incident_id, target, actor=_st(ctx).actor)
    console.print(
        f"written {target}: {len(manifest['alert_ids'])} alert(s), {len(manifest['rules'])} rule "
        f"file(s), {len(manifest['inputs'])} input file(s)"
    )
    for s in manifest["unreadable_sources"]:
        console.print(f"[yellow]warning[/yellow] {s}: source not readable, its lines are missing")


@incident_app.command("replay")
def replay(
    bundle: Path = typer.Argument(..., help="Evidence bundle (.tar.gz)."),
    inputs: list[Path] | None = typer.Argument(None, help="Input files (default: as cited)."),
    as_json: bool = typer.Option(False, "--json"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Check a bundle's hashes and replay its inputs with its rules: same alert ids? (With
    the configuration's token key, a bundled care history is replayed too.)"""
    from rempart.cases.evidence import verify_bundle
    from rempart.cases.service import token_key

    result = verify_bundle(bundle, inputs or None, token_key(get_config(config)))
    if as_json:
        print_json(result.to_dict())
    else:
        for p in result.problems:
            console.print(f"[red]problem[/red] {p}")
        console.print(
            f"{'[green]ok[/green]' if result.ok else '[red]failed[/red]'}: "
            f"{len(result.reproduced)}/{len(result.expected)} alert(s) reproduced"
        )
    if not result.ok:
        raise typer.Exit(1)


@incident_app.command("reidentify")
def reidentify(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    dpo_key: Path = typer.Option(..., "--dpo-key", help="The DPO's private key (PEM)."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV token -> NIR (written mode 0600)."),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Environment variable holding the key's passphrase."
    ),
) -> None:
    """DPO only: turn the affected tokens back into NIRs (audited)."""
    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    found, missing = (
        _st(ctx)
        .cases()
        .reidentify(incident_id, dpo_key, out, actor=_st(ctx).actor, passphrase=passphrase or None)
    )
    console.print(f"written {out}: {found} re-identified, {missing} not in the vault")


@incident_app.command("dpo-keygen")
def dpo_keygen(
    private: Path = typer.Option(..., "--private", help="Where to write the private key (0600)."),
    public: Path = typer.Option(..., "--public", help="Where to write the public key."),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Environment variable holding a passphrase for the key."
    ),
) -> None:
    """Make the DPO's key pair; give Rempart only the public key (cases.dpo_public_key)."""
    from rempart.cases.vault import generate_dpo_keys

    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    kid = generate_dpo_keys(private, public, passphrase or None)
    console.print(f"DPO key {kid}: private {private} (keep it off this host), public {public}")


@incident_app.command("status")
def status(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    new_status: str = typer.Argument(..., metavar="STATUS", help="triage, contained, ..."),
    reason: str | None = typer.Option(None, "--reason"),
) -> None:
    """Move an incident along new -> triage -> contained -> notified -> closed."""
    inc = (
        _st(ctx)
        .cases()
        .store.transition(incident_id, new_status, actor=_st(ctx).actor, reason=reason)
    )
    console.print(f"incident {inc.id}: {inc.status}")


@incident_app.command("assign")
def assign(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    assignee: str = typer.Argument(...),
) -> None:
    """Assign an incident."""
    _st(ctx).cases().store.assign(incident_id, assignee, actor=_st(ctx).actor)
    console.print(f"incident {incident_id}: assigned to {assignee}")


@incident_app.command("note")
def note(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    text: str = typer.Argument(...),
) -> None:
    """Add a note (kept in the audit trail)."""
    _st(ctx).cases().store.add_note(incident_id, text, actor=_st(ctx).actor)
    console.print(f"incident {incident_id}: note added")


@incident_app.command("window")
def window(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    account: str = typer.Argument(...),
    start: str = typer.Argument(..., help="ISO time (UTC unless an offset is given)."),
    end: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
) -> None:
    """Replace the estimated compromise window of one account."""
    from rempart.cases.incidents import IncidentError
    from rempart.cases.window import parse_time

    try:
        t0, t1 = parse_time(start), parse_time(end)
    except ValueError:
        raise IncidentError("times must be ISO 8601, e.g. 2026-03-21T08:00:00Z") from None
    _st(ctx).cases().store.set_window(
        incident_id, account, t0, t1, actor=_st(ctx).actor, reason=reason
    )
    console.print(f"incident {incident_id}: window of {account} set")


@incident_app.command("set")
def set_field(
    ctx: typer.Context,
    incident_id: int = typer.Argument(..., metavar="ID"),
    field: str = typer.Argument(..., help="nature, consequences, measures_taken, ..."),
    values: list[str] = typer.Argument(..., help="Value (several for list fields)."),
) -> None:
    """Set a field of the breach documents (audited)."""
    from rempart.cases.incidents import DETAIL_FIELDS

    listy = field in ("measures_taken", "measures_proposed", "consequences")
    value: Any = list(values) if listy else " ".join(values)
    if field not in DETAIL_FIELDS and field not in ("attribution", "awareness"):
        from rempart.cases.incidents import IncidentError

        raise IncidentError(f"unknown field {field!r}", hint=", ".join(DETAIL_FIELDS))
    store = _st(ctx).cases().store
    if field == "attribution":
        store.set_attribution(incident_id, value, actor=_st(ctx).actor)
    elif field == "awareness":
        from rempart.cases.window import parse_time

        store.set_awareness(
            incident_id,
            parse_time(values[0]),
            actor=_st(ctx).actor,
            reason=" ".join(values[1:]) or "set by an analyst",
        )
    else:
        store.set_detail(incident_id, field, value, actor=_st(ctx).actor)
    console.print(f"incident {incident_id}: {field} set")


@incident_app.command("audit")
def audit_cmd(
    ctx: typer.Context,
    incident_id: int | None = typer.Argument(None, metavar="[ID]"),
    verify: bool = typer.Option(False, "--verify", help="Recompute the hash chain."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The audit trail (of one incident, or all), and its verification."""
    store = _st(ctx).cases().store
    if verify:
        ok, reason = store.verify_audit()
        console.print(f"{'[green]ok[/green]' if ok else '[red]broken[/red]'}: {reason}")
        if not ok:
            raise typer.Exit(1)
        return
    entries = [e.to_dict() for e in store.audit_trail(incident_id)]
    if as_json:
        print_json(entries)
        return
    for e in entries:
        console.print(
            f"{e['seq']:>5} {e['at']} {e['actor']:<12} {e['action']:<22} "
            f"{json.dumps(e['details'], ensure_ascii=False)[:120]}",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
